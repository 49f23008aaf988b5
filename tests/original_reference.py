"""The original SimREC toolbox's side, for tests: its checkpoint files, and its evaluation written from its
documented behaviour (shared/reference/simrec-original.md), independently of simrec's evaluator.

`write_original_checkpoint` saves a model the way the original's two layouts did: v1 the DDP wrapper's
state_dict (`module.` keys) with the number of finished epochs, v2 the bare state_dict with the index of the
last finished epoch; both with Adam's and LambdaLR's state and the learning rate.

`ReferenceEvaluation` re-does, per expression, what the original's evaluation does: the vocabulary rebuilt from
the annotation JSON (every split in file order, entries, sentences, words), its tokenizer and encoding, cv2
decoding with BGR -> RGB, its letterbox (integer sizes, `//2` offsets, pad 127, bilinear), ToTensor, the
model's box in letterbox pixels, `yolobox2label` (no clipping), `batch_box_iou` (a hit is IoU > 0.5) and
`mask_iou` (prediction > 0.35, cropped, resized bilinearly, pixels > 0 against the ground truth > 0.5).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

DELETED = ".,'!?\"()*#:;"
MASK_PROBABILITY = 0.35  # MCN's mask: sigmoid > 0.35
PAD = 127


def write_original_checkpoint(path: Path, model: nn.Module, layout: str, epochs_done: int = 4) -> Path:
    """`model` saved as the original toolbox's `layout` ("v1" or "v2") saved it, optimizer and scheduler included."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    for parameter in parameters:
        parameter.grad = torch.zeros_like(parameter)  # a step with zero gradients fills Adam's state, moves nothing
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    weights = model.state_dict()
    if layout == "v1":
        weights, epoch = {f"module.{name}": value for name, value in weights.items()}, epochs_done
    else:
        epoch = epochs_done - 1
    payload = {"epoch": epoch, "state_dict": weights, "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "lr": 1e-4}  # fmt: skip
    torch.save(payload, path)
    return path


def aim_boxes(model: nn.Module, seed: int, side: float, offset: float) -> nn.Module:
    """Make a randomly initialised model answer with boxes about `side` input pixels wide, placed by its features.

    A random head answers with boxes far off every object; these land near objects often enough that hits,
    misses and boxes over the image's edge all occur on a small fixture. `offset` is the raw centre term of every
    cell (SimREC adds it to the cell's index, MCN its sigmoid).
    """
    generator = torch.Generator().manual_seed(seed)
    head = model.head
    with torch.no_grad():
        if hasattr(head, "reg_preds"):  # SimREC: (cx, cy) = (t + cell) * 32, (w, h) = exp(t) * 32
            regression, objectness = head.reg_preds[0], head.obj_preds[0]
            regression.weight.normal_(0, 0.05, generator=generator)
            regression.bias.copy_(torch.tensor([offset, offset, math.log(side / 32), math.log(side / 32)]))
            objectness.weight.normal_(0, 1.0, generator=generator)
        else:  # MCN: (cx, cy) = sigmoid(t) + cell, (w, h) = exp(t) * anchor
            weight, bias = head.dconv.weight.view(len(head.anchors), 5, -1), head.dconv.bias.view(-1, 5)
            weight[:, :4].normal_(0, 0.05, generator=generator)
            weight[:, 4].normal_(0, 1.0, generator=generator)
            bias[:, :2] = offset
            bias[:, 2:4] = torch.log(side / (head.anchors * head.stride))
    return model


def spread_masks(model: nn.Module, image: np.ndarray, tokens: np.ndarray, spread: float = 8.0) -> nn.Module:
    """Make an MCN's mask vary over the image and cut it about in half at the 0.35 threshold on this input.

    At random initialisation the mask logits are nearly the same everywhere (so a mask is all or nothing); the last
    layer of the mask branch is scaled so they span `spread` logits on this input, centred on the threshold.
    """
    projection = model.head.sconv[0].out_proj
    with torch.no_grad():
        probabilities = model(torch.from_numpy(image)[None], torch.from_numpy(tokens)[None])["masks"].double()
        logits = torch.logit(probabilities)
        gain = spread / float(logits.max() - logits.min())
        bias = projection.bias.double()
        projection.weight.mul_(gain)
        threshold = math.log(MASK_PROBABILITY / (1 - MASK_PROBABILITY))
        projection.bias.copy_((threshold - gain * (logits.median() - bias)).float())
    return model


def tokenize(sentence: str) -> list[str]:
    """Lowercase, delete `. , ' ! ? " ( ) * # : ;`, then `-` and `/` become spaces, then split on whitespace."""
    text = sentence.lower()
    for character in DELETED:
        text = text.replace(character, "")
    return text.replace("-", " ").replace("/", " ").split()


def token_to_ix(anns: dict[str, list[dict]]) -> dict[str, int]:
    """PAD, UNK, CLS, then each new word in the order met: splits in file order, entries, sentences, words."""
    table = {"PAD": 0, "UNK": 1, "CLS": 2}
    for entries in anns.values():
        for entry in entries:
            for sentence in entry["refs"]:
                for word in tokenize(sentence):
                    table.setdefault(word, len(table))
    return table


def encode(sentence: str, table: dict[str, int], max_length: int) -> np.ndarray:
    ids = np.zeros(max_length, dtype=np.int64)
    for position, word in enumerate(tokenize(sentence)[:max_length]):
        ids[position] = table.get(word, table["UNK"])
    return ids


Info = tuple[int, int, int, int, int, int]  # the original's info_img without the image id: h, w, nh, nw, dx, dy


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Info]:
    """The longer side becomes `size` (the other truncated with int), centred with `//2`, padded with 127."""
    height, width = image.shape[:2]
    aspect = width / height
    if aspect < 1:
        new_height, new_width = size, size * aspect
    else:
        new_width, new_height = size, size / aspect
    new_width, new_height = int(new_width), int(new_height)
    dx, dy = (size - new_width) // 2, (size - new_height) // 2
    canvas = np.full((size, size, 3), PAD, dtype=np.uint8)
    canvas[dy : dy + new_height, dx : dx + new_width] = cv2.resize(image, (new_width, new_height))
    return canvas, (height, width, new_height, new_width, dx, dy)


def yolobox2label(box: np.ndarray, info: Info) -> np.ndarray:
    """Letterbox x1, y1, x2, y2 back to original pixels; nothing is clipped."""
    height, width, new_height, new_width, dx, dy = info
    x1, y1, x2, y2 = (float(value) for value in box)
    return np.array([(x1 - dx) / new_width * width, (y1 - dy) / new_height * height,
                     (x2 - dx) / new_width * width, (y2 - dy) / new_height * height])  # fmt: skip


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


def mask_iou(probabilities: np.ndarray, truth: np.ndarray, info: Info) -> float:
    """The binary prediction cropped from the letterbox, resized to the image, pixels > 0, against truth > 0.5."""
    height, width, new_height, new_width, dx, dy = info
    binary = (probabilities > MASK_PROBABILITY).astype(np.float32)
    predicted = cv2.resize(binary[dy : dy + new_height, dx : dx + new_width], (width, height)) > 0
    target = truth > 0.5
    union = np.logical_or(predicted, target).sum()
    return float(np.logical_and(predicted, target).sum() / union) if union else 0.0


@dataclass(frozen=True)
class Expression:
    split: str
    index: int
    sentence: str
    box: np.ndarray  # x1, y1, x2, y2 in original pixels, unclipped
    iou: float
    hit: bool
    mask_iou: float | None
    image: np.ndarray  # the network's input, float32 [3, size, size]
    tokens: np.ndarray


class ReferenceEvaluation:
    """The original's evaluation of `model` on the prepared dataset under `data_root` (REFER images)."""

    def __init__(self, model: nn.Module, ann_file: Path, image_dir: Path, size: int, max_length: int = 15) -> None:
        self.model = model.eval()
        self.anns = json.loads(ann_file.read_text())
        self.vocabulary = token_to_ix(self.anns)
        self.image_dir = image_dir
        self.size = size
        self.max_length = max_length

    def image_file(self, image_id: int) -> Path:
        return self.image_dir / f"COCO_train2014_{image_id:012d}.jpg"

    @torch.no_grad()
    def expression(self, split: str, index: int, masks: dict[int, np.ndarray] | None = None) -> Expression:
        """Expression `index` of `split` (one sentence per entry in evaluation splits); `masks` by mask_id."""
        entry = self.anns[split][index]
        sentence = entry["refs"][0]
        bgr = cv2.imread(str(self.image_file(entry["iid"])))
        canvas, info = letterbox(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.size)
        image = canvas.astype(np.float32).transpose(2, 0, 1) / 255.0
        tokens = encode(sentence, self.vocabulary, self.max_length)
        outputs = self.model(torch.from_numpy(image)[None], torch.from_numpy(tokens)[None])
        box = yolobox2label(outputs["boxes"][0, :4].double().numpy(), info)
        x, y, w, h = entry["bbox"]
        iou = box_iou(box, np.array([x, y, x + w, y + h], dtype=np.float64))
        overlap = None
        if masks is not None:
            overlap = mask_iou(outputs["masks"][0].float().numpy(), masks[entry["mask_id"]], info)
        return Expression(split, index, sentence, box, iou, iou > 0.5, overlap, image, tokens)

    def split(self, split: str, masks: dict[int, np.ndarray] | None = None) -> list[Expression]:
        return [self.expression(split, index, masks) for index in range(len(self.anns[split]))]
