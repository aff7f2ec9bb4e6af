"""The benchmark: selection strategies against random MD on the same pools, labels and training,
learning curves and the HTML report; and the demo (a small campaign, then its benchmark).
"""

from dael.benchmark import peers  # noqa: F401  (registers the peers' strategies)
from dael.benchmark.run import run_benchmark

__all__ = ["run_benchmark"]
