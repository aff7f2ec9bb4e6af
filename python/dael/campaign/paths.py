"""Where a campaign folder keeps what (the layout is documented in dael.campaign.loop)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Paths"]


@dataclass
class Paths:
    root: Path

    @property
    def dataset(self) -> Path:
        return self.root / "dataset.db"

    def round(self, r: int) -> Path:
        return self.root / "rounds" / f"round-{r:02d}"

    def model(self, r: int) -> Path:
        return self.root / "models" / f"round-{r:02d}"

    def done(self, r: int, stage: str) -> Path:
        return self.round(r) / f"done-{stage}"
