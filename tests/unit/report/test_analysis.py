"""The analysis adds up, and hand-made answers on synthetic scenes (where every object is known) get the miss
classes they were made to have."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simrec_cli.data.objects import read_objects, referred_objects
from simrec_cli.data.synthetic import generate_synthetic
from simrec_cli.engine.metrics import SampleResult, box_iou_xyxy, xywh_to_xyxy
from simrec_cli.engine.protocol import CLIPPED
from simrec_cli.report import analysis
from simrec_cli.report.analysis import BACKGROUND, LOOSE_BOX, WRONG_OBJECT


@pytest.fixture(scope="module")
def scenes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scenes")
    generate_synthetic(root, num_images=60, seed=5, image_size=96)
    return root


def _val(root: Path) -> tuple[list[dict], dict]:
    anns = json.loads((root / "anns" / "synthetic.json").read_text())
    return anns["val"] + anns["test"], anns


def _result(index: int, entry: dict, box: list[float]) -> SampleResult:
    target = xywh_to_xyxy(np.array([entry["bbox"]]))
    iou = float(box_iou_xyxy(np.array([box], dtype=np.float64), target)[0])
    return SampleResult(index, entry["iid"], entry["refs"][0], box, 0.5, target[0].tolist(), iou)


def _designed(entries: list[dict], objects) -> tuple[list[SampleResult], list[str | None]]:
    """One answer per expression, made to be a hit, a wrong object, a loose box or background."""
    results, expected = [], []
    for index, entry in enumerate(entries):
        x, y, w, h = entry["bbox"]
        boxes = xywh_to_xyxy(objects.of(str(entry["iid"]))[0])
        others = [b for b in boxes.tolist() if b != [x, y, x + w, y + h]]
        disjoint = all(b[2] <= x or b[0] >= x + w or b[3] <= y or b[1] >= y + h for b in others)
        case = index % 4
        if case == 0:
            box, label = [x, y, x + w, y + h], None
        elif case == 1 and others:
            box = others[0]
            overlap = float(box_iou_xyxy(np.array([box]), np.array([[x, y, x + w, y + h]]))[0])
            label = None if overlap > 0.5 else WRONG_OBJECT
        elif case == 2 and disjoint:
            box, label = [x, y, x + w / 3, y + h], LOOSE_BOX  # a third of the target: IoU 1/3
        else:
            box, label = [0.0, 0.0, 1.0, 1.0], BACKGROUND
        results.append(_result(index, entry, box))
        expected.append(label)
    return results, expected


def test_hand_made_answers_get_their_classes_and_everything_adds_up(scenes_root: Path) -> None:
    entries, _ = _val(scenes_root)
    objects = read_objects(scenes_root / "anns" / "synthetic.objects.json")
    results, expected = _designed(entries, objects)
    samples = analysis.SplitSamples.from_results(results, entries)
    scenes = analysis.Scenes(samples, objects)
    classes = analysis.classify_misses(scenes)
    assert classes == expected
    assert {WRONG_OBJECT, LOOSE_BOX, BACKGROUND} <= set(expected)
    taxonomy = analysis.taxonomy(classes)
    misses = int((samples.ious <= 0.5).sum())  # the original protocol: a hit is IoU > 0.5
    assert taxonomy.misses == misses == sum(taxonomy.counts.values())
    assert sum(taxonomy.share(name) for name in analysis.MISS_CLASSES) == pytest.approx(100.0)
    overall = float((samples.ious > 0.5).mean() * 100)
    cuts = analysis.breakdowns(samples, scenes, objects.category_names, synthetic=True)
    assert [cut.key for cut in cuts] == ["size", "length", "category", "distractors", "spatial", "kind"]
    for cut in cuts:
        assert sum(bucket.count for bucket in cut.buckets) == len(samples), cut.key
        weighted = sum(b.count * b.acc50 for b in cut.buckets if b.count) / len(samples)
        assert weighted == pytest.approx(overall), cut.key
        mean_iou = sum(b.count * b.mean_iou for b in cut.buckets if b.count) / len(samples)
        assert mean_iou == pytest.approx(samples.ious.mean() * 100), cut.key
    categories = next(cut for cut in cuts if cut.key == "category")
    assert {bucket.name for bucket in categories.buckets} <= {"circle", "square", "triangle", "diamond"}


def test_without_objects_file_an_unreferred_object_is_not_a_wrong_object(scenes_root: Path) -> None:
    entries, _ = _val(scenes_root)
    complete = read_objects(scenes_root / "anns" / "synthetic.objects.json")
    # In each image keep the expressions of one object only: the others become objects nobody refers to.
    first = {}
    for entry in entries:
        first.setdefault(entry["iid"], entry["mask_id"])
    kept = [entry for entry in entries if entry["mask_id"] == first[entry["iid"]]]
    results, rows = [], []
    for entry in kept:
        target = xywh_to_xyxy(np.array([entry["bbox"]]))
        for box in xywh_to_xyxy(complete.of(str(entry["iid"]))[0]):
            if float(box_iou_xyxy(box[None], target)[0]) < 0.1:  # another object, far from the target
                results.append(_result(len(results), entry, box.tolist()))
                rows.append(entry)
                break
    assert len(results) > 5
    samples = analysis.SplitSamples.from_results(results, rows)
    assert set(analysis.classify_misses(analysis.Scenes(samples, complete))) == {WRONG_OBJECT}
    referred = referred_objects({"val": kept})
    assert set(analysis.classify_misses(analysis.Scenes(samples, referred))) == {BACKGROUND}


def test_bucket_rules_at_their_edges() -> None:
    targets = np.array([[0, 0, 31, 32], [0, 0, 32, 32], [0, 0, 95, 97], [0, 0, 96, 96]], dtype=float)
    assert analysis.size_labels(targets) == [analysis.SIZE_BUCKETS[i] for i in (0, 1, 1, 2)]
    lengths = analysis.length_labels(["dog", "the dog", "the red dog", "a b c d e", "a b c d e f g h", "a-b c d"])
    assert lengths == ["1-2 words", "1-2 words", "3-4 words", "5-7 words", "8+ words", "3-4 words"]
    spatial = analysis.spatial_labels(["the left cup", "cup at the TOP", "top left cup", "middle one", "a cup"])
    assert spatial == ["left/right", "top/bottom", "several", "middle/center", "none"]
    categories = np.array([5] * 3 + [1] * 2 + list(range(10, 30)) + [-1])
    labels, order = analysis.category_labels(categories, {5: "cup", 1: "dog"}, top=4)
    assert order == ["cup", "dog", "unknown", "category 10", "other categories"]
    assert labels[:5] == ["cup"] * 3 + ["dog"] * 2 and labels[-1] == "unknown"
    assert labels.count("other categories") == 19


def test_gallery_choice_and_histogram() -> None:
    ious = np.array([0.9, 0.0, 0.3, 0.0, 0.55, 0.7, 0.49, 1.0])
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.5, 0.5, 0.5, 0.5])
    boxes = np.zeros((8, 4))
    samples = analysis.SplitSamples(ious, scores, boxes, boxes, np.zeros(8, int), ["1"] * 8, ["x"] * 8)
    assert analysis.worst_misses(samples, 3) == [3, 1, 2]  # IoU 0 twice: the more confident first
    assert analysis.typical_hits(samples, 2) == [5, 7]  # hits by IoU: 0.55, 0.7, 0.9, 1.0
    assert analysis.typical_hits(samples, 10) == [4, 5, 0, 7]
    edge = analysis.SplitSamples(np.array([0.5, 0.6]), np.ones(2), np.zeros((2, 4)), np.zeros((2, 4)),
                                 np.zeros(2, int), ["1"] * 2, ["x"] * 2)  # fmt: skip
    assert analysis.worst_misses(edge, 5) == [0]  # IoU 0.5 misses under the original protocol
    assert analysis.worst_misses(replace(edge, protocol=CLIPPED), 5) == []
    edges, counts = analysis.iou_histogram(ious)
    assert len(edges) == 21 and sum(counts) == 8 and counts[0] == 2 and counts[18] == 1 and counts[-1] == 1
