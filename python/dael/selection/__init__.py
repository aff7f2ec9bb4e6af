"""The librarian: which candidates raise the dataset's global entropy — greedy/lazy/streaming selection
of a list, the screen of pools of any size (chunked, resumable, Dask) and the FAISS novelty index.
"""

from dael.selection.greedy import Selection, select

__all__ = ["select", "Selection"]
