"""Pictures of validation predictions for TensorBoard (`train.log_image`)."""

from __future__ import annotations

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from simrec_cli.data.dataset import RefDataset
from simrec_cli.data.images import read_image
from simrec_cli.drawing import Annotation, draw_annotations, picture_base
from simrec_cli.engine.metrics import SampleResult


def prediction_picture(image: np.ndarray, result: SampleResult) -> np.ndarray:
    """The image with the prediction (first colour, with its expression and score) and the ground truth."""
    annotations = [
        Annotation(result.expression, tuple(result.box), result.score),  # type: ignore[arg-type]
        Annotation("ground truth", tuple(result.gt_box), 1.0),  # type: ignore[arg-type]
    ]
    return np.asarray(draw_annotations(picture_base(image), annotations))


def log_prediction_images(writer: SummaryWriter, dataset: RefDataset, results: list[SampleResult], step: int) -> None:
    for number, result in enumerate(results):
        picture = prediction_picture(read_image(dataset.image_path(result.index)), result)
        writer.add_image(f"val/prediction_{number}", picture, step, dataformats="HWC")
