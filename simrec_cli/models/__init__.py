"""SimREC and MCN with the released models' module names, shapes and arithmetic.

`build_model(settings.model, vocab_size=V)` gives the module; in eval mode `module(images, tokens)` returns
`{"boxes": [B, 5]}` (plus `"masks"` for MCN); in training mode with `targets=` (and `masks=`) it returns the
losses. Weight loading lives in `simrec_cli.models.weights`, inference options in `.inference`.
"""

from simrec_cli.models.base import GroundingModel
from simrec_cli.models.build import build_model, count_parameters
from simrec_cli.models.mcn import MCN
from simrec_cli.models.simrec import SimREC

__all__ = ["MCN", "GroundingModel", "SimREC", "build_model", "count_parameters"]
