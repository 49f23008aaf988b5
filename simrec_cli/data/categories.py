"""Category indices (`cat_id` of an annotation entry) and their names.

SimREC numbers COCO's 80 categories 0-79 in the order of their COCO ids, so RefCOCO, RefCOCO+ and RefCOCOg files
prepared by any tool share these names; the synthetic dataset numbers its shapes. Other datasets get their names
from the objects file prepare-data writes, or stay numbered.
"""

from __future__ import annotations

# COCO's 80 category ids; SimREC maps them to 0-79 in this order.
COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
COCO_CATEGORY_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip
COCO_DATASETS = ("refcoco", "refcoco+", "refcocog")


def known_category_names(dataset: str) -> dict[int, str]:
    """The names of a dataset's category indices where they are fixed by the dataset itself."""
    if dataset in COCO_DATASETS:
        return dict(enumerate(COCO_CATEGORY_NAMES))
    if dataset == "synthetic":
        from simrec_cli.data.synthetic import SHAPES

        return dict(enumerate(SHAPES))
    return {}
