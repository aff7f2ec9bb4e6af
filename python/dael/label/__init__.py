"""Labelling with an oracle (any ASE calculator), in parallel worker processes or on Dask, with timeouts,
retries and a dataset that loses nothing.
"""

from dael.label.labelling import label_dataset

__all__ = ["label_dataset"]
