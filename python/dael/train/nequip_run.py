"""`nequip-train`, then `nequip-package build` of its best checkpoint, in one process:

    python -m dael.train.nequip_run CHECKPOINT PACKAGE NEQUIP-TRAIN-ARGS...

The two share one import of torch, Lightning and nequip (7 s on the 2-core box), which a second subprocess
paid again for every model. A run that wrote no CHECKPOINT packages nothing (the caller reports it)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    checkpoint, target, train_args = argv[0], argv[1], argv[2:]
    from nequip.scripts.train import main as train  # heavy: torch, Lightning

    sys.argv = ["nequip-train", *train_args]  # Hydra reads the command line
    train()
    if Path(checkpoint).is_file():
        print("packaging the best checkpoint", flush=True)
        from nequip.scripts.package import main as package

        package(["build", checkpoint, target])


if __name__ == "__main__":
    main(sys.argv[1:])
