"""The built-in `synthetic` dataset: scenes of coloured shapes and expressions that single out one of them.

Every command can run on it without a download. A scene holds 3-5 shapes (4 kinds, 6 colours, small or big)
on a textured background, later shapes sometimes occluding earlier ones. Colours and shapes are drawn from a
few per scene, so most objects share attributes and the expression is needed to find the target: by
attributes ("the big red circle"), by extremes ("the leftmost blue shape") or by relations ("the green
square left of the yellow triangle"). Every expression matches exactly one object under the definitions
below (centres compared with a margin), boxes and masks are those of the visible pixels, and the whole
dataset is a pure function of the seed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from simrec_cli.data.annotations import Annotations
from simrec_cli.data.images import synthetic_file_name
from simrec_cli.data.prepared import PreparedObjects, PrepareSummary, output_settings, write_prepared
from simrec_cli.errors import SimrecError
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.storage.atomic import json_text
from simrec_cli.storage.outputs import OutputFolder, Outputs, StagedFolder
from simrec_cli.storage.owned import FolderKind

DEFAULT_NUM_IMAGES = 2000
MIN_IMAGE_SIZE = 32  # pixels: room for 3-5 shapes that can still be told apart
MAX_IMAGE_SIZE = 4096  # pixels: larger than any model input; 100000 would ask for 30 GB per picture
DEFAULT_IMAGE_SIZE = 160
JPEG_QUALITY = 95
DEMO_EXPRESSION = "the big red circle"
IMAGES_FORMAT = "simrec-synthetic-images-v1"  # in demo.json: the images folder is simrec's to replace
DEMO_ATTRIBUTES = {"colour": "red", "shape": "circle", "size": "big"}

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 175, 50),
    "blue": (35, 75, 235),
    "yellow": (240, 215, 30),
    "purple": (155, 45, 200),
    "white": (250, 250, 250),
}
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = {"small": (0.13, 0.17), "big": (0.26, 0.32)}  # side as a share of the image size
MARGIN = 0.06  # centres must differ by this share of the image size for left/right/above/below to hold
MIN_VISIBLE = 0.75  # an occluded shape keeps at least this share of its pixels
ATTRIBUTE_SETS = (
    ("shape",),
    ("colour",),
    ("colour", "shape"),
    ("size", "shape"),
    ("size", "colour"),
    ("size", "colour", "shape"),
)
CLASS_SETS = ((), ("shape",), ("colour",), ("colour", "shape"))
EXTREMES = {"leftmost": (0, -1), "rightmost": (0, 1), "topmost": (1, -1), "bottommost": (1, 1)}
RELATIONS = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}
SPLIT_OF_REMAINDER = {0: "val", 1: "test"}  # image index % 10; all others are train


@dataclass
class SceneObject:
    """One shape: its attributes, visible box [x, y, w, h] and centre in pixels, and its visible mask."""

    colour: str
    shape: str
    size: str
    box: list[float]
    centre: tuple[float, float]
    mask: np.ndarray = field(repr=False)

    def attributes(self) -> dict[str, str]:
        return {"colour": self.colour, "shape": self.shape, "size": self.size}

    def to_dict(self) -> dict:
        """Everything but the mask, JSON-ready."""
        return {key: value for key, value in asdict(self).items() if key != "mask"}


@dataclass
class Scene:
    """A rendered image (HxWx3 uint8 RGB), its objects, and (expression, index of the object it names)."""

    image: np.ndarray
    objects: list[SceneObject]
    expressions: list[tuple[str, int]]


def noun_phrase(description: dict[str, str]) -> str:
    """'the [size] [colour] shape-or-"shape"' for a partial description."""
    words = [description[key] for key in ("size", "colour") if key in description]
    return " ".join(["the", *words, description.get("shape", "shape")])


def expression_kind(sentence: str) -> str:
    """Which rule wrote a generated expression: 'relation', 'extreme' or 'attribute' (read from its words)."""
    padded = f" {sentence} "
    if any(f" {word} " in padded for word in RELATIONS):
        return "relation"
    if any(f" {word} " in padded for word in EXTREMES):
        return "extreme"
    return "attribute"


def _matching(description: dict[str, str], objects: list[SceneObject]) -> list[int]:
    return [i for i, obj in enumerate(objects) if all(obj.attributes()[k] == v for k, v in description.items())]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.uniform(70, 150, size=(5, 5, 1)).astype(np.float32)
    smooth = cv2.resize(np.repeat(coarse, 3, axis=2), (size, size), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 6, size=(size, size, 3))
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def _draw_shape(canvas: np.ndarray, shape: str, cx: float, cy: float, side: float, value) -> None:
    half = side / 2
    if shape == "circle":
        cv2.circle(canvas, (round(cx), round(cy)), round(half), value, thickness=-1, lineType=cv2.LINE_8)
        return
    if shape == "square":
        half *= 0.85
        points = [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    elif shape == "triangle":
        points = [(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    else:  # diamond
        points = [(cx, cy - half), (cx + half, cy), (cx, cy + half), (cx - half, cy)]
    cv2.fillPoly(canvas, [np.round(np.array(points)).astype(np.int32)], value, lineType=cv2.LINE_8)


def _place(rng: np.random.Generator, image_size: int, count: int) -> list[tuple[str, str, str, float, float, float]]:
    """Attributes and geometry of the shapes: few colours/shapes per scene, limited overlap."""
    colours = rng.choice(list(COLOURS), size=3, replace=False)
    shapes = rng.choice(SHAPES, size=2 + int(rng.integers(2)), replace=False)
    placed: list[tuple[str, str, str, float, float, float]] = []
    for _ in range(count * 30):
        if len(placed) == count:
            break
        size = str(rng.choice(list(SIZES)))
        side = float(rng.uniform(*SIZES[size])) * image_size
        cx, cy = (float(v) for v in rng.uniform(side / 2 + 1, image_size - side / 2 - 1, size=2))
        # centres at least 0.6 of the mean side apart: overlap stays partial, occlusion occasional
        if all(np.hypot(cx - px, cy - py) > 0.6 * (side + ps) / 2 for *_, px, py, ps in placed):
            placed.append((str(rng.choice(colours)), str(rng.choice(shapes)), size, cx, cy, side))
    return placed


def _render(rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, list[SceneObject]]:
    """Draw scenes from the stream until one has every shape visible enough to be named."""
    while True:
        image = _background(rng, image_size)
        placed = _place(rng, image_size, int(rng.integers(3, 6)))
        owner = np.full((image_size, image_size), -1, dtype=np.int16)
        full_areas = []
        for index, (colour, shape, _, cx, cy, side) in enumerate(placed):
            layer = np.zeros_like(owner, dtype=np.uint8)
            _draw_shape(layer, shape, cx, cy, side, 1)
            owner[layer > 0] = index
            image[layer > 0] = COLOURS[colour]
            full_areas.append(int(layer.sum()))
        masks = [owner == index for index in range(len(placed))]
        if all(mask.sum() >= MIN_VISIBLE * area for mask, area in zip(masks, full_areas, strict=True)):
            return image, [_scene_object(attrs, mask) for attrs, mask in zip(placed, masks, strict=True)]


def _scene_object(placed: tuple[str, str, str, float, float, float], mask: np.ndarray) -> SceneObject:
    colour, shape, size = placed[:3]
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
    return SceneObject(colour, shape, size, box, ((x0 + x1) / 2, (y0 + y1) / 2), mask)


def _attribute_expressions(target: int, objects: list[SceneObject]) -> list[str]:
    attributes = objects[target].attributes()
    phrases = []
    for keys in ATTRIBUTE_SETS:
        description = {key: attributes[key] for key in keys}
        if _matching(description, objects) == [target]:
            phrases.append(noun_phrase(description))
    return phrases


def _extreme_expressions(target: int, objects: list[SceneObject], margin: float) -> list[str]:
    attributes = objects[target].attributes()
    phrases = []
    for keys in CLASS_SETS:
        description = {key: attributes[key] for key in keys}
        others = [i for i in _matching(description, objects) if i != target]
        if not others:
            continue
        for word, (axis, sign) in EXTREMES.items():
            lead = [sign * (objects[target].centre[axis] - objects[i].centre[axis]) for i in others]
            if min(lead) > margin:
                phrases.append(noun_phrase(description).replace("the ", f"the {word} ", 1))
    return phrases


def _relation_expressions(target: int, objects: list[SceneObject], margin: float) -> list[str]:
    attributes = objects[target].attributes()
    anchors = {i: _attribute_expressions(i, objects) for i in range(len(objects)) if i != target}
    phrases = []
    for keys in CLASS_SETS[1:]:
        description = {key: attributes[key] for key in keys}
        candidates = _matching(description, objects)
        if len(candidates) < 2:
            continue  # the class alone names the target: a relation would be decoration
        for anchor, anchor_phrases in anchors.items():
            if anchor in candidates or not anchor_phrases:
                continue
            for word, (axis, sign) in RELATIONS.items():
                offsets = {i: sign * (objects[i].centre[axis] - objects[anchor].centre[axis]) for i in candidates}
                others_clear = all(offsets[i] < 0 for i in candidates if i != target)
                if offsets[target] > margin and others_clear:
                    phrases.append(f"{noun_phrase(description)} {word} {anchor_phrases[0]}")
    return phrases


def _expressions(rng: np.random.Generator, objects: list[SceneObject], image_size: int) -> list[tuple[str, int]]:
    """Up to one expression of each kind per object (attribute, extreme, relation), chosen by the rng."""
    margin = MARGIN * image_size
    chosen = []
    for target in range(len(objects)):
        for candidates in (
            _attribute_expressions(target, objects),
            _extreme_expressions(target, objects, margin),
            _relation_expressions(target, objects, margin),
        ):
            if candidates:
                chosen.append((candidates[int(rng.integers(len(candidates)))], target))
    return chosen


def _scene_from(rng: np.random.Generator, image_size: int) -> Scene:
    image, objects = _render(rng, image_size)
    return Scene(image, objects, _expressions(rng, objects, image_size))


def render_scene(seed: int, image_size: int = DEFAULT_IMAGE_SIZE) -> Scene:
    """One scene with known answers, for held-out tests of a trained model (same generator as the dataset)."""
    return _scene_from(np.random.default_rng(seed), image_size)


def _split_of(index: int) -> str:
    return SPLIT_OF_REMAINDER.get(index % 10, "train")


def demo_scene(image_size: int = DEFAULT_IMAGE_SIZE) -> tuple[Scene, int]:
    """The demo scene (in no split) in which "the big red circle" names exactly one object, and that object."""
    for seed in range(10_000):
        scene = render_scene(1_000_000 + seed, image_size)
        matches = [i for i, obj in enumerate(scene.objects) if obj.attributes() == DEMO_ATTRIBUTES]
        if len(matches) == 1:
            return scene, matches[0]
    raise RuntimeError("no demo scene among 10,000 seeds")  # the generator's rules make this unreachable


def demo_jpeg(image_size: int = DEFAULT_IMAGE_SIZE) -> bytes:
    """The bytes of `demo.jpg` as prepare-data writes it (the served page offers it as a sample)."""
    scene, _ = demo_scene(image_size)
    return _encode_jpeg(scene.image)


def _encode_jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def _write_demo(folder: StagedFolder, image_size: int) -> None:
    """`demo.jpg` and `demo.json`, its answer (and the mark that the images folder is simrec's)."""
    scene, target = demo_scene(image_size)
    folder.write("demo.jpg", lambda handle: handle.write(_encode_jpeg(scene.image)), binary=True)
    answer = {
        "format": IMAGES_FORMAT,
        "expression": DEMO_EXPRESSION,
        "box_xywh": scene.objects[target].box,
        "objects": [obj.to_dict() for obj in scene.objects],
    }
    folder.write_text("demo.json", json_text(answer))


def _is_synthetic_images(demo: object) -> bool:
    """demo.json marks the folder: with our format, or (written before the format was recorded) our demo."""
    if not isinstance(demo, dict):
        return False
    return demo.get("format") == IMAGES_FORMAT or ("format" not in demo and demo.get("expression") == DEMO_EXPRESSION)


_IMAGE_NAME = re.compile(r"^\d{6,}\.jpg$")  # synthetic_file_name's pattern
SYNTHETIC_IMAGES = FolderKind(
    "synthetic images",
    "demo.json",
    _is_synthetic_images,
    lambda _demo, relative: relative in ("demo.jpg", "demo.json") or _IMAGE_NAME.match(relative) is not None,
)


def generate_synthetic(
    data_root: Path,
    num_images: int = DEFAULT_NUM_IMAGES,
    seed: int = 0,
    image_size: int = DEFAULT_IMAGE_SIZE,
    reporter: Reporter | None = None,
    word_vectors: str | None = None,
) -> PrepareSummary:
    """Write the synthetic dataset under `data_root` exactly as prepare-data writes a real one."""
    reporter = reporter or NullReporter()
    if num_images < 10:
        raise SimrecError(f"--num-images {num_images} is too few", "use at least 10 (one val and one test image)")
    if image_size < MIN_IMAGE_SIZE:
        raise SimrecError(f"--image-size {image_size} is too small", f"use at least {MIN_IMAGE_SIZE} pixels")
    if image_size > MAX_IMAGE_SIZE:
        raise SimrecError(f"--image-size {image_size} is too large", f"use at most {MAX_IMAGE_SIZE} pixels")
    settings = output_settings("synthetic", data_root)
    images = OutputFolder(settings.resolved_image_path(), SYNTHETIC_IMAGES, "--data-root")
    anns: Annotations = {"train": [], "val": [], "test": []}
    masks: dict[int, dict] = {}
    objects: dict[str, list[list[float]]] = {}
    with Outputs(images) as outputs:
        staged = outputs.folder(images)
        for index in reporter.track(range(num_images), num_images, "rendering synthetic scenes"):
            scene = _scene_from(np.random.default_rng([seed, index]), image_size)
            jpeg = _encode_jpeg(scene.image)
            staged.write(synthetic_file_name(index), lambda handle, jpeg=jpeg: handle.write(jpeg), binary=True)
            split = _split_of(index)
            objects[str(index)] = [[*obj.box, SHAPES.index(obj.shape)] for obj in scene.objects]
            for number, obj in enumerate(scene.objects):
                sentences = [sentence for sentence, target in scene.expressions if target == number]
                if not sentences:
                    continue
                mask_id = index * 10 + number
                masks[mask_id] = mask_utils.encode(np.asfortranarray(obj.mask.astype(np.uint8)))
                base = {"iid": index, "bbox": obj.box, "cat_id": SHAPES.index(obj.shape), "mask_id": mask_id}
                if split == "train":
                    anns[split].append({**base, "refs": sentences})
                else:
                    anns[split].extend({**base, "refs": [sentence]} for sentence in sentences)
        _write_demo(staged, image_size)
        return write_prepared(
            "synthetic", data_root, anns, masks=masks, word_vectors=word_vectors, reporter=reporter,
            objects=PreparedObjects(objects, dict(enumerate(SHAPES))), outputs=outputs,
        )  # fmt: skip
