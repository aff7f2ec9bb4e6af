"""Is a trained model safe to use? Its own MD at the hottest and highest conditions and one step beyond
(dael.check.robustness), and the physics checks of a delivered model: phase retention, equation of state,
phonons (dael.check.physics); `check_model` runs them with one `CheckSettings`.
"""

from dael.check.report import check_model, headline, lines
from dael.check.settings import CHECKS, CheckSettings

__all__ = ["CHECKS", "CheckSettings", "check_model", "headline", "lines"]
