"""The synthetic generator: deterministic, and every expression names exactly one object.

The expressions are parsed here with a grammar of our own and evaluated against the objects, so the test
does not reuse the generator's logic.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from simrec_cli.data.masks import MaskStore
from simrec_cli.data.synthetic import COLOURS, MARGIN, SHAPES, SceneObject, generate_synthetic, render_scene

EXTREME_AXES = {"leftmost": (0, -1), "rightmost": (0, 1), "topmost": (1, -1), "bottommost": (1, 1)}
RELATION_AXES = {"left of": (0, -1), "right of": (0, 1), "above": (1, -1), "below": (1, 1)}


def _parse_phrase(words: list[str]) -> tuple[str | None, dict[str, str]]:
    assert words[0] == "the", words
    words = words[1:]
    extreme = words.pop(0) if words[0] in EXTREME_AXES else None
    description = {}
    if words[0] in ("small", "big"):
        description["size"] = words.pop(0)
    if words[0] in COLOURS:
        description["colour"] = words.pop(0)
    assert len(words) == 1 and (words[0] in SHAPES or words[0] == "shape"), words
    if words[0] != "shape":
        description["shape"] = words[0]
    return extreme, description


def _fits(obj: SceneObject, description: dict[str, str]) -> bool:
    return all(getattr(obj, key) == value for key, value in description.items())


def _referents(sentence: str, objects: list[SceneObject], margin: float) -> list[int]:
    """Indices of the objects the sentence can mean (strict reading of extremes and relations)."""
    for relation, (axis, sign) in RELATION_AXES.items():
        if f" {relation} " in sentence:
            head, tail = sentence.split(f" {relation} ")
            _, head_desc = _parse_phrase(head.split())
            _, anchor_desc = _parse_phrase(tail.split())
            anchors = [o for o in objects if _fits(o, anchor_desc)]
            assert len(anchors) == 1, sentence
            anchor = anchors[0].centre[axis]
            return [
                i
                for i, o in enumerate(objects)
                if _fits(o, head_desc) and o is not anchors[0] and sign * (o.centre[axis] - anchor) > 0
            ]
    extreme, description = _parse_phrase(sentence.split())
    matching = [i for i, o in enumerate(objects) if _fits(o, description)]
    if extreme is None:
        return matching
    axis, sign = EXTREME_AXES[extreme]
    return [
        i
        for i in matching
        if all(sign * (objects[i].centre[axis] - objects[j].centre[axis]) > margin for j in matching if j != i)
    ]


def test_every_expression_names_exactly_its_object() -> None:
    kinds = {"attribute": 0, "extreme": 0, "relation": 0}
    for seed in range(150):
        scene = render_scene(seed)
        assert 3 <= len(scene.objects) <= 5
        for sentence, target in scene.expressions:
            assert _referents(sentence, scene.objects, MARGIN * 160) == [target], (seed, sentence)
            kind = (
                "relation"
                if any(f" {r} " in sentence for r in RELATION_AXES)
                else ("extreme" if sentence.split()[1] in EXTREME_AXES else "attribute")
            )
            kinds[kind] += 1
    assert min(kinds.values()) > 50, kinds


def test_boxes_and_masks_are_the_visible_pixels() -> None:
    scene = render_scene(5, image_size=96)
    assert scene.image.shape == (96, 96, 3) and scene.image.dtype == np.uint8
    for obj in scene.objects:
        ys, xs = np.nonzero(obj.mask)
        assert obj.box == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert obj.box[2] >= 0.13 * 96 * 0.8
        colour = np.array(COLOURS[obj.colour])
        assert (np.abs(scene.image[obj.mask].astype(int) - colour).max(axis=1) == 0).all()


def test_generator_is_deterministic_and_complete(tmp_path: Path) -> None:
    first = generate_synthetic(tmp_path / "a", num_images=20, seed=7)
    generate_synthetic(tmp_path / "b", num_images=20, seed=7)
    generate_synthetic(tmp_path / "c", num_images=20, seed=8)
    read = lambda root: (root / "anns" / "synthetic.json").read_text()  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b") != read(tmp_path / "c")
    image = "images/synthetic/000003.jpg"
    assert (tmp_path / "a" / image).read_bytes() == (tmp_path / "b" / image).read_bytes()
    assert set(first.splits) == {"train", "val", "test"}
    assert first.splits["train"].images == 16 and first.splits["val"].images == 2
    anns = json.loads(read(tmp_path / "a"))
    store = MaskStore(tmp_path / "a" / "masks" / "synthetic.rle.json", tmp_path / "a" / "masks" / "synthetic")
    for entry in anns["val"]:
        mask = store.get(entry["mask_id"])
        x, y, w, h = (int(v) for v in entry["bbox"])
        assert mask.sum() > 0 and not mask[:, :x].any() and not mask[:, x + w :].any()
        assert not mask[:y].any() and not mask[y + h :].any()
    demo = json.loads((tmp_path / "a" / "images" / "synthetic" / "demo.json").read_text())
    assert demo["expression"] == "the big red circle"
    picture = cv2.imread(str(tmp_path / "a" / "images" / "synthetic" / "demo.jpg"))
    x, y, w, h = (int(v) for v in demo["box_xywh"])
    b, g, r = picture[y + h // 2, x + w // 2].astype(int)
    assert r > 180 and g < 90 and b < 90


def test_expression_kind_names_the_rule_that_wrote_each_expression() -> None:
    from simrec_cli.data import synthetic

    rules = {
        "attribute": lambda target, objects, margin: synthetic._attribute_expressions(target, objects),
        "extreme": synthetic._extreme_expressions,
        "relation": synthetic._relation_expressions,
    }
    seen = set()
    for seed in range(40):
        scene = render_scene(seed)
        for target in range(len(scene.objects)):
            for kind, rule in rules.items():
                for phrase in rule(target, scene.objects, MARGIN * 160):
                    assert synthetic.expression_kind(phrase) == kind, phrase
                    seen.add(kind)
    assert seen == set(rules)
