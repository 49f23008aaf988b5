"""Evaluation protocols: the rules that turn a prediction into a hit, an IoU and a mask, by name.

`original` is the evaluation of the SimREC toolbox, the one its published table was measured with: the box is
mapped back to the original image as its `yolobox2label` does and not clipped to the image, a box counts as a
hit when its IoU is strictly above the threshold (its `batch_box_iou`), and an MCN mask keeps every pixel where
the resized binary prediction is above 0 (its `mask_iou`), so edge pixels the bilinear resize touched count too.
It is the default, so that numbers from simrec and from the original toolbox can be set side by side.

`clipped` is simrec's earlier evaluation: boxes clipped to the image before the IoU, hits at IoU >= threshold,
mask pixels kept where the resized prediction is above 0.5. Its IoUs are never lower than the original's (a
box that spills over the image edge loses the part that cannot overlap anything).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simrec_cli.errors import SimrecError, quoted

HIT_IOU = 0.5
TIGHT_IOU = 0.75


@dataclass(frozen=True)
class EvaluationProtocol:
    """How boxes are mapped back, when an IoU is a hit, and which pixels of a resized mask are kept."""

    name: str
    clip_boxes: bool  # clip the box to the image before the IoU
    strict: bool  # a hit is IoU > threshold (True) or IoU >= threshold (False)
    mask_cutoff: float  # a pixel of the prediction resized to the original size is kept when above this
    mask_thresholds: tuple[float, ...]  # the mask precisions reported (Prec@t)
    mask_key_digits: int  # how the precisions' keys are written ("0.50" or "0.5")
    description: str

    def hits(self, ious: np.ndarray, threshold: float = HIT_IOU) -> np.ndarray:
        """Which IoUs count as hits at `threshold` under this protocol (a bool array)."""
        ious = np.asarray(ious, dtype=np.float64)
        return ious > threshold if self.strict else ious >= threshold

    def hit(self, iou: float, threshold: float = HIT_IOU) -> bool:
        return bool(self.hits(np.array([iou]), threshold)[0])

    def rule(self, threshold: float = HIT_IOU) -> str:
        """The hit rule in words, e.g. 'IoU > 0.5'."""
        return f"IoU {'>' if self.strict else '≥'} {threshold:g}"

    def miss_rule(self, threshold: float = HIT_IOU) -> str:
        """The miss rule in words, e.g. 'IoU ≤ 0.5'."""
        return f"IoU {'≤' if self.strict else '<'} {threshold:g}"

    def mask_key(self, threshold: float) -> str:
        return f"{threshold:.{self.mask_key_digits}f}"

    def as_dict(self) -> dict[str, object]:
        """What a report or a metrics file says about the protocol."""
        return {"name": self.name, "hit_rule": self.rule(), "description": self.description}


ORIGINAL = EvaluationProtocol(
    name="original",
    clip_boxes=False,
    strict=True,
    mask_cutoff=0.0,
    mask_thresholds=tuple(round(0.5 + 0.05 * step, 2) for step in range(10)),
    mask_key_digits=2,
    description="boxes not clipped to the image, hit = IoU > 0.5, mask pixels of the resized prediction > 0, "
    "mask precisions at 0.50:0.05:0.95 (the original SimREC's evaluation)",
)
CLIPPED = EvaluationProtocol(
    name="clipped",
    clip_boxes=True,
    strict=False,
    mask_cutoff=0.5,
    mask_thresholds=(0.5, 0.6, 0.7, 0.8, 0.9),
    mask_key_digits=1,
    description="boxes clipped to the image, hit = IoU ≥ 0.5, mask pixels of the resized prediction > 0.5, "
    "mask precisions at 0.5:0.1:0.9",
)
PROTOCOLS: dict[str, EvaluationProtocol] = {protocol.name: protocol for protocol in (ORIGINAL, CLIPPED)}
# Metrics written before protocols had names were measured with what is now `clipped`.
UNNAMED = CLIPPED.name


def protocol_named(name: str, source: str = "--protocol") -> EvaluationProtocol:
    """The protocol called `name`; an unknown name is refused naming the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise SimrecError(
            f"{source}: unknown evaluation protocol {quoted(name)}", f"use one of {', '.join(PROTOCOLS)}"
        ) from None
