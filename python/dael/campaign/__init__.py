"""A campaign: its configuration (campaign.yaml + seeds), the loop explore → filter → label → train,
the preflight check before any side effect, the distilled base, and the driver–oracle agreement.
"""

from dael.campaign.config import Campaign
from dael.campaign.folder import load
from dael.campaign.loop import run as run_campaign
from dael.campaign.presets import preset
from dael.campaign.status import status

__all__ = ["Campaign", "load", "preset", "run_campaign", "status"]
