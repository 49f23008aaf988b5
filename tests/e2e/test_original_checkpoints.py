"""Checkpoints of the original SimREC toolbox, end to end: `simrec import`, `simrec eval ORIGINAL --preset`, and
the evaluation held against the original's own (tests/original_reference.py) per expression.

The original-format files are written here from simrec's own SimREC and MCN (their parameter names are the
original's), in both of the original's layouts, with its optimizer and scheduler entries. The data is a REFER
fixture prepared by `simrec prepare-data`, as a user coming from the original would have it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from simrec_cli.models import build_model
from simrec_cli.settings import Settings, load_settings
from tests.e2e.bad_inputs import RunsCode
from tests.e2e.conftest import TINY, invoke
from tests.original_reference import (
    ReferenceEvaluation,
    aim_boxes,
    spread_masks,
    token_to_ix,
    write_original_checkpoint,
)
from tests.refer_fixture import ReferFixture, coco_name, write_refer_fixture
from tests.serving import running_server

# Input size, box side (input pixels) and box centre term of each model's aimed head (original_reference.py): with
# these, hits, misses and boxes over the image's edge all occur. SimREC at 32 pixels has one cell; MCN at 64 has a
# mask branch whose logits can be spread over the image.
AIMS = {"simrec": (32, 26.0, 0.5), "mcn": (64, 48.0, 1.0)}
PRESET = "synthetic-tiny"
SPLITS = ("val", "testA", "testB")
FP32_ON_CPU = ("--device", "cpu", "--precision", "fp32")
BOX_PIXELS = 0.5
IOU_TOLERANCE = 1e-3


def overrides(model: str) -> list[str]:
    """The settings of the tiny models on REFER data (what --preset PRESET gets on the command line)."""
    size = AIMS[model][0]
    return [*TINY, "dataset.name=refcoco", f"dataset.input_shape=[{size},{size}]", f"model.name={model}"]


def reference(original: Original, refer: ReferFixture) -> ReferenceEvaluation:
    """The original's evaluation of `original`'s model on the fixture."""
    anns = refer.root / "anns" / "refcoco.json"
    size, tokens = AIMS[original.model][0], original.settings.dataset.max_token_length
    return ReferenceEvaluation(original.network, anns, refer.image_dir, size, tokens)


@dataclass(frozen=True)
class Original:
    """An original-format checkpoint of one model and what it was written from."""

    model: str
    settings: Settings
    network: torch.nn.Module
    files: dict[str, Path]  # layout -> file


@pytest.fixture(scope="module")
def refer(tmp_path_factory: pytest.TempPathFactory) -> ReferFixture:
    fixture = write_refer_fixture(tmp_path_factory.mktemp("refer"), num_images=16, num_objects=32,
                                  num_sentences=60, object_sides=(0.3, 0.95))  # fmt: skip
    result = invoke("prepare-data", "--dataset", "refcoco", "--data-root", fixture.root, "--generate-mask")
    assert result.exit_code == 0, result.output
    return fixture


def _original(model: str, refer: ReferFixture, folder: Path) -> Original:
    settings = load_settings(PRESET, overrides(model))
    words = token_to_ix(json.loads((refer.root / "anns" / "refcoco.json").read_text()))
    torch.manual_seed(0)
    _, side, offset = AIMS[model]
    network = aim_boxes(build_model(settings.model, vocab_size=len(words)), 0, side, offset).eval()
    original = Original(model, settings, network, {})
    if network.has_mask_head:
        first = reference(original, refer).expression("val", 0)
        spread_masks(network, first.image, first.tokens)
    for layout in ("v1", "v2"):
        original.files[layout] = write_original_checkpoint(folder / f"{model}-{layout}.pth", network, layout)
    return original


@pytest.fixture(scope="module")
def originals(refer: ReferFixture, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Original]:
    folder = tmp_path_factory.mktemp("original")
    return {model: _original(model, refer, folder) for model in ("simrec", "mcn")}


def import_args(source: Path, refer: ReferFixture, output: Path, model: str = "simrec") -> list[object]:
    return ["import", source, "--preset", PRESET, "--data-root", refer.root, "-o", output, *overrides(model)]


def true_masks(refer: ReferFixture) -> dict[int, np.ndarray]:
    """Each ref's object mask as REFER's instances.json draws it, by mask_id (the ref_id)."""
    return {ref["ref_id"]: refer.true_masks[ref["ann_id"]] for ref in refer.refs}


def mask_iou(line: dict) -> float:
    return line["mask_intersection"] / line["mask_union"]


def predictions(path: Path) -> dict[tuple[str, int], dict]:
    return {(line["split"], line["index"]): line for line in map(json.loads, path.read_text().splitlines())}


# ------------------------------------------------------------------------------------------- import round trips


@pytest.mark.parametrize(("model", "layout"), [("simrec", "v1"), ("simrec", "v2"), ("mcn", "v1"), ("mcn", "v2")])
def test_import_writes_a_self_contained_checkpoint(
    model: str, layout: str, originals: dict[str, Original], refer: ReferFixture, tmp_path: Path
) -> None:
    source = originals[model].files[layout]
    output = tmp_path / "imported.pth"
    result = invoke(*import_args(source, refer, output, model))
    assert result.exit_code == 0, result.output
    imported = torch.load(output, weights_only=True)
    anns_file = refer.root / "anns" / "refcoco.json"
    assert imported["vocabulary"] == list(token_to_ix(json.loads(anns_file.read_text())))
    assert imported["epoch"] == 4  # v1 stored 4 finished epochs, v2 the index 3 of the last
    assert imported["settings"]["model"]["name"] == model and imported["settings"]["dataset"]["name"] == "refcoco"
    origin = imported["provenance"]
    assert origin["source"] == source.name and origin["source_format"] == layout
    assert origin["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert origin["annotations_sha256"] == hashlib.sha256(anns_file.read_bytes()).hexdigest()
    assert {"epoch", "state_dict", "optimizer", "scheduler", "lr"} <= set(origin["source_entries"])
    expected = originals[model].network.state_dict()
    assert imported["model"].keys() == expected.keys()
    assert all(torch.equal(imported["model"][name], value) for name, value in expected.items())


def test_imported_and_direct_evaluation_agree_and_predict_and_export_work(
    originals: dict[str, Original], refer: ReferFixture, tmp_path: Path
) -> None:
    original = originals["simrec"]
    imported = tmp_path / "imported.pth"
    assert invoke(*import_args(original.files["v2"], refer, imported)).exit_code == 0
    direct, converted = tmp_path / "direct.jsonl", tmp_path / "imported.jsonl"
    result = invoke("eval", original.files["v1"], "--preset", PRESET, "--data-root", refer.root,
                    *overrides("simrec"), *FP32_ON_CPU, "--save-predictions", direct)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert invoke("eval", imported, *FP32_ON_CPU, "--save-predictions", converted).exit_code == 0
    assert predictions(direct) == predictions(converted)

    first = next(iter(predictions(converted).values()))
    image = refer.image_dir / coco_name(first["image_id"])
    answered = invoke("predict", image, first["expression"], "--checkpoint", imported, "--json", "--no-save",
                      *FP32_ON_CPU)  # fmt: skip
    assert answered.exit_code == 0, answered.output
    answer = json.loads(next(line for line in answered.stdout.splitlines() if line.startswith("{")))
    height, width = next((i["height"], i["width"]) for i in refer.images if i["id"] == first["image_id"])
    np.testing.assert_allclose(answer["box"], np.clip(first["box"], 0, [width, height] * 2), atol=BOX_PIXELS)

    onnx_file = tmp_path / "imported.onnx"
    exported = invoke("export", imported, "-o", onnx_file)
    assert exported.exit_code == 0, exported.output
    assert onnx_file.is_file() and "onnxruntime check: boxes match" in exported.output


@pytest.mark.slow  # a server process starts: seconds of imports before the first answer
def test_an_imported_checkpoint_serves(originals: dict[str, Original], refer: ReferFixture, tmp_path: Path) -> None:
    imported = tmp_path / "imported.pth"
    assert invoke(*import_args(originals["mcn"].files["v1"], refer, imported, "mcn")).exit_code == 0
    image = refer.image_dir / coco_name(refer.images[0]["id"])
    with running_server(imported, *FP32_ON_CPU) as server:
        response = httpx.post(f"{server.url}predict", files={"image": (image.name, image.read_bytes(), "image/jpeg")},
                              data={"expression": "the man on the left"}, timeout=60)  # fmt: skip
        assert server.stop() == 0, server.log
    assert response.status_code == 200, response.text
    record = response.json()["results"][0]
    assert len(record["box"]) == 4 and "mask" in record


# ----------------------------------------------------------------------- the original's evaluation, per expression


def _evaluate(
    source: Path, refer: ReferFixture, model: str, protocol: str, output: Path
) -> dict[tuple[str, int], dict]:
    result = invoke("eval", source, "--preset", PRESET, "--data-root", refer.root, *overrides(model), *FP32_ON_CPU,
                    "--protocol", protocol, "--save-predictions", output)  # fmt: skip
    assert result.exit_code == 0, result.output
    return predictions(output)


@pytest.mark.parametrize("model", ["simrec", "mcn"])
def test_eval_gives_the_originals_numbers_per_expression(
    model: str, originals: dict[str, Original], refer: ReferFixture, tmp_path: Path
) -> None:
    """Boxes within 0.5 px, IoU within 1e-3, the same hits; for MCN the same mask IoU and mask hits."""
    original = originals[model]
    ours = _evaluate(original.files["v2"], refer, model, "original", tmp_path / "original.jsonl")
    clipped = _evaluate(original.files["v1"], refer, model, "clipped", tmp_path / "clipped.jsonl")
    masks = true_masks(refer) if model == "mcn" else None
    expected = [expression for split in SPLITS for expression in reference(original, refer).split(split, masks)]
    assert len(expected) == len(ours) >= 32
    outside = changed = masks_changed = 0
    for want in expected:
        got, other = ours[(want.split, want.index)], clipped[(want.split, want.index)]
        assert got["expression"] == want.sentence and got["protocol"] == "original"
        np.testing.assert_allclose(got["box"], want.box, atol=BOX_PIXELS)
        assert abs(got["iou"] - want.iou) <= IOU_TOLERANCE and got["hit"] == want.hit
        if masks is not None:
            assert abs(mask_iou(got) - want.mask_iou) <= IOU_TOLERANCE
            assert (mask_iou(got) > 0.5) == (want.mask_iou > 0.5)
            masks_changed += abs(mask_iou(other) - mask_iou(got)) > IOU_TOLERANCE
        outside += bool(min(want.box) < 0)
        changed += other["iou"] > got["iou"] + IOU_TOLERANCE
    assert 0 < sum(want.hit for want in expected) < len(expected)  # the check saw hits and misses,
    assert outside and changed  # boxes over the image's edge, whose IoU clipping raises,
    if masks is not None:  # masks that hit and masks that miss, and edges the two mask cut-offs tell apart
        assert 0 < sum(want.mask_iou > 0.5 for want in expected) < len(expected) and masks_changed


def test_the_inputs_are_the_originals(originals: dict[str, Original], refer: ReferFixture) -> None:
    """Vocabulary, token ids and the letterboxed image tensor are the original's, exactly."""
    from simrec_cli.data.dataset import RefDataset
    from simrec_cli.data.text import Vocabulary

    settings = originals["simrec"].settings.model_copy(deep=True)
    settings.dataset.data_root = refer.root
    original = reference(originals["simrec"], refer)
    vocabulary = Vocabulary.from_annotations(original.anns)
    assert vocabulary.words == list(original.vocabulary)
    dataset = RefDataset(settings.dataset, "testA", vocabulary, training=False, load_masks=False)
    for index in range(len(dataset)):
        want, sample = original.expression("testA", index), dataset[index]
        assert np.array_equal(sample.tokens.numpy(), want.tokens)
        assert torch.equal(sample.image, torch.from_numpy(want.image))


# ------------------------------------------------------------------------------------------------- refusals


def _refused(result: object, *fragments: str) -> None:
    """Exit status 2, one error line and no traceback, saying each of `fragments` (line breaks ignored)."""
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output, result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, text


def test_another_vocabulary_is_refused_naming_both_sizes(
    originals: dict[str, Original], refer: ReferFixture, tmp_path: Path
) -> None:
    other = write_refer_fixture(tmp_path / "other", num_images=4, num_objects=4, num_sentences=4, seed=9)
    assert invoke("prepare-data", "--dataset", "refcoco", "--data-root", other.root).exit_code == 0
    words = len(token_to_ix(json.loads((other.root / "anns" / "refcoco.json").read_text())))
    rows = originals["simrec"].network.lang_encoder.embedding.weight.shape[0]
    assert words != rows
    output = tmp_path / "x.pth"
    result = invoke("import", originals["simrec"].files["v2"], "--preset", PRESET, "--data-root", other.root,
                    "-o", output, *overrides("simrec"))  # fmt: skip
    _refused(result, f"has {rows:,} rows", f"has {words:,} words", "the annotations the model was trained with")
    assert not output.exists()
    direct = invoke("eval", originals["simrec"].files["v2"], "--preset", PRESET, "--data-root", other.root,
                    *overrides("simrec"), *FP32_ON_CPU)  # fmt: skip
    _refused(direct, f"has {rows:,} rows", f"has {words:,} words")


def _edited(source: Path, target: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    payload = torch.load(source, weights_only=True)
    edit(payload)
    torch.save(payload, target)
    return target


def test_broken_and_foreign_files_are_refused_in_one_line(
    originals: dict[str, Original], refer: ReferFixture, tmp_path: Path
) -> None:
    source = originals["simrec"].files["v2"]
    output = tmp_path / "out.pth"
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(source.read_bytes()[:40_000])
    _refused(invoke(*import_args(truncated, refer, output)), "truncated.pth is not a readable checkpoint")

    payload = tmp_path / "payload.pth"
    payload.write_bytes(pickle.dumps({"state_dict": RunsCode(tmp_path / "ran")}, protocol=2))
    _refused(invoke(*import_args(payload, refer, output)), "would call", "nothing in it ran")
    assert not (tmp_path / "ran").exists()

    headless = _edited(
        source,
        tmp_path / "headless.pth",
        lambda p: [p["state_dict"].pop(k) for k in list(p["state_dict"]) if k.startswith("head.")],
    )
    _refused(invoke(*import_args(headless, refer, output)), "missing (head.", "the preset")

    mcn_as_simrec = invoke(*import_args(originals["mcn"].files["v2"], refer, output, "simrec"))
    _refused(mcn_as_simrec, "simrec model with a", "unexpected", "--preset mcn-refcoco-scratch")

    darknet = invoke(*import_args(source, refer, output), "model.visual_backbone.name=darknet53")
    _refused(darknet, "darknet53 backbone", "with another shape")

    mixed = _edited(source, tmp_path / "mixed.pth", lambda p: p["state_dict"].update({"module.extra": torch.zeros(1)}))
    _refused(invoke(*import_args(mixed, refer, output)), "carry the `module.` prefix")

    bare = tmp_path / "bare.pth"
    torch.save({"weights": torch.zeros(2)}, bare)
    _refused(invoke(*import_args(bare, refer, output)), "holds no 'state_dict'")
    assert not output.exists()

    assert invoke(*import_args(source, refer, output)).exit_code == 0
    _refused(invoke(*import_args(output, refer, tmp_path / "again.pth")), "already a simrec checkpoint")
    _refused(invoke(*import_args(source, refer, source)), "is a file this command reads")


def test_other_verbs_name_simrec_import_and_resume_names_fine_tuning(
    originals: dict[str, Original], refer: ReferFixture, tmp_path: Path
) -> None:
    source = originals["simrec"].files["v2"]
    image = refer.image_dir / coco_name(refer.images[0]["id"])
    for args in (["predict", image, "the man", "--checkpoint", source, "--no-save"], ["export", source],
                 ["eval", source, "--device", "cpu"], ["compare", source]):  # fmt: skip
        result = invoke(*args)
        assert "simrec import" in " ".join(result.output.split()), (args, result.output)
    imported = tmp_path / "imported.pth"
    assert invoke(*import_args(source, refer, imported)).exit_code == 0
    _refused(invoke("resume", imported, "--device", "cpu"), "holds weights only", "train.vl_pretrain_weight")
    _refused(invoke("eval", imported, "train.epochs=3"), "apply only to an original SimREC checkpoint")
