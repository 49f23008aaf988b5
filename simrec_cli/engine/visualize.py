"""Pictures of validation predictions for TensorBoard (`train.log_image`)."""

from __future__ import annotations

import cv2
import numpy as np
from torch.utils.tensorboard import SummaryWriter

from simrec_cli.data.dataset import RefDataset
from simrec_cli.data.images import read_image
from simrec_cli.engine.metrics import SampleResult

PREDICTION_RGB = (230, 40, 40)
TRUTH_RGB = (40, 200, 40)


def draw_prediction(image: np.ndarray, result: SampleResult) -> np.ndarray:
    """The image with the ground truth (green), the prediction (red, with its score) and the expression."""
    canvas = image.copy()
    for box, colour in ((result.gt_box, TRUTH_RGB), (result.box, PREDICTION_RGB)):
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
    cv2.putText(canvas, f"{result.score:.2f}", (int(result.box[0]), max(12, int(result.box[1]) - 4)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, PREDICTION_RGB, 1, cv2.LINE_AA)  # fmt: skip
    cv2.putText(canvas, result.expression[:60], (4, canvas.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (40, 40, 230), 1, cv2.LINE_AA)  # fmt: skip
    return canvas


def log_prediction_images(writer: SummaryWriter, dataset: RefDataset, results: list[SampleResult], step: int) -> None:
    for number, result in enumerate(results):
        picture = draw_prediction(read_image(dataset.image_path(result.index)), result)
        writer.add_image(f"val/prediction_{number}", picture, step, dataformats="HWC")
