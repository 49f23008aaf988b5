"""Detection heads: REChead (SimREC, anchor-free with SimOTA) and MCNhead (MCN, anchors plus mask)."""

from simrec_cli.models.heads.mcn_head import MCNhead
from simrec_cli.models.heads.rec_head import REChead

__all__ = ["MCNhead", "REChead"]
