"""The torch device a run asks for ('cpu' or 'cuda'), checked before anything runs."""

from __future__ import annotations

__all__ = ["DEVICES", "check_device"]

DEVICES = ("cpu", "cuda")


def check_device(device: str) -> str:
    """`device` ('cpu' or 'cuda') when this machine can run torch on it; one ValueError saying why not."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device 'cuda' asked for, but torch {torch.__version__} sees no CUDA GPU here "
                             "(torch.cuda.is_available() is False: no GPU, no driver or a CPU-only torch build); "
                             "use --device cpu or run on a machine with a GPU")
        # torch loads its CUDA linear algebra lazily, and threads that first use it at once race ("lazy wrapper
        # should be called at most once", pytorch#90613; the stress's cell determinant is such a use): the
        # benchmark evaluates models in threads, so load it here, in the thread that checks the device
        torch.linalg.det(torch.eye(3, device="cuda"))
    return device
