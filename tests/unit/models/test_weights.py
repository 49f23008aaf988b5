"""Loading every supported weight format from files the tests write, and refusing loads that match too little."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18, vgg16

from simrec_cli.errors import SimrecError
from simrec_cli.models import build_model
from simrec_cli.models.backbones import VGG16, DarkNet53, ResNet
from simrec_cli.models.darknet_weights import (
    DarknetHeader,
    conv_layers,
    read_darknet_file,
    save_darknet_weights,
)
from simrec_cli.models.weights import (
    LoadReport,
    load_backbone_weights,
    load_pretrained_checkpoint,
    load_state_dict_checked,
)
from simrec_cli.reporting import NullReporter

from .conftest import VOCAB, tiny_model_settings


def randomized(module: nn.Module) -> nn.Module:
    """Fill every parameter and BN statistic with distinct random values, so equality proves a load."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.1)
    return module


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if sa[key].is_floating_point():
            assert torch.equal(sa[key], sb[key]), key


def test_v1_checkpoint_with_module_prefix_loads(tmp_path: Path) -> None:
    source = randomized(build_model(tiny_model_settings(), VOCAB))
    path = tmp_path / "v1.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 5}, path)
    target = build_model(tiny_model_settings(), VOCAB)
    reporter = NullReporter()
    report = load_pretrained_checkpoint(target, path, reporter)
    assert report.fraction == 1.0 and not report.missing and not report.unexpected
    assert_same_state(source, target)
    assert any("loaded" in message for message in reporter.messages)


@pytest.mark.parametrize("layout", ["ours", "v2", "bare"])
def test_checkpoint_layouts_load(tmp_path: Path, layout: str) -> None:
    source = randomized(build_model(tiny_model_settings(), VOCAB))
    state = source.state_dict()
    content = {"ours": {"model": state, "epoch": 1}, "v2": {"state_dict": state, "lr": 1e-4}, "bare": state}[layout]
    torch.save(content, tmp_path / "ckpt.pth")
    target = build_model(tiny_model_settings(), VOCAB)
    load_pretrained_checkpoint(target, tmp_path / "ckpt.pth")
    assert_same_state(source, target)


def test_partial_and_empty_matches_are_refused() -> None:
    model = build_model(tiny_model_settings(), VOCAB)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    only_head = {k: v for k, v in model.state_dict().items() if k.startswith("head.")}
    with pytest.raises(SimrecError, match="refusing to load"):
        load_state_dict_checked(model, only_head, min_fraction=0.9, what="partial", reporter=NullReporter())
    with pytest.raises(SimrecError, match="refusing to load"):
        load_state_dict_checked(model, {"other.weight": torch.zeros(3)}, min_fraction=0.1, what="foreign")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # a refused load changes nothing


def test_embedding_size_mismatch_names_both_vocabularies() -> None:
    source = build_model(tiny_model_settings(), VOCAB + 5)
    target = build_model(tiny_model_settings(), VOCAB)
    with pytest.raises(SimrecError, match=f"{VOCAB + 5} words.*{VOCAB} words") as error:
        load_pretrained_checkpoint(target, {"model": source.state_dict()})
    assert "vocabulary" in (error.value.hint or "")


def test_load_report_summary_lists_what_did_not_match() -> None:
    report = LoadReport("x", total=4, matched=["a", "b"], missing=["c"], unexpected=["d"])
    text = report.summary()
    assert "loaded 2/4" in text and "1 missing (c)" in text and "1 unexpected (d)" in text
    assert report.fraction == 0.5


def test_yolov5_style_backbone_file_loads_through_build_model(tmp_path: Path) -> None:
    donor = randomized(build_model(tiny_model_settings(), VOCAB)).visual_encoder
    yolov5 = dict(donor.state_dict())
    yolov5["model.24.m.0.weight"] = torch.zeros(255, 64, 1, 1)  # a detection layer the backbone does not have
    path = tmp_path / "cspdarknet.pth"
    torch.save({"model": yolov5}, path)
    settings = tiny_model_settings(
        "model.visual_backbone.pretrained=true", f"model.visual_backbone.pretrained_weight_path={path}"
    )
    reporter = NullReporter()
    model = build_model(settings, VOCAB, reporter=reporter)
    assert_same_state(donor, model.visual_encoder)
    assert any("1 unexpected (model.24.m.0.weight)" in m for m in reporter.messages)


def test_missing_backbone_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    settings = tiny_model_settings(
        "model.visual_backbone.pretrained=true", f"model.visual_backbone.pretrained_weight_path={missing}"
    )
    with pytest.raises(SimrecError, match=r"nowhere\.pth"):
        build_model(settings, VOCAB)


def test_full_checkpoint_given_as_backbone_loads_its_visual_part(tmp_path: Path) -> None:
    donor = randomized(build_model(tiny_model_settings(), VOCAB))
    torch.save({"state_dict": donor.state_dict()}, tmp_path / "full.pth")
    target = build_model(tiny_model_settings(), VOCAB)
    load_backbone_weights(target, tmp_path / "full.pth")
    assert_same_state(donor.visual_encoder, target.visual_encoder)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "yolov5l.pt"
    torch.save({"model": nn.Linear(2, 2)}, path)
    with pytest.raises(SimrecError, match=r"it would call 'torch\.nn\.modules\.linear\.Linear' when loaded") as error:
        load_backbone_weights(DarkNet53(0.25, 0.25), path)
    assert "weights_only" not in str(error.value)  # torch's paragraph of advice to turn the safety off is not quoted


def test_darknet_weights_round_trip(tmp_path: Path) -> None:
    source = randomized(DarkNet53(0.25, 0.25))
    path = tmp_path / "darknet.weights"
    save_darknet_weights(source, path, DarknetHeader(0, 2, 5, seen=32013312))
    header, values = read_darknet_file(path)
    assert header == DarknetHeader(0, 2, 5, 32013312)
    expected_values = sum(
        conv.weight.numel() + (4 * bn.num_features if bn is not None else conv.bias.numel())
        for conv, bn in conv_layers(source)
    )
    assert values.size == expected_values
    target = DarkNet53(0.25, 0.25)
    report = load_backbone_weights(target, path, NullReporter())
    assert not report.missing
    assert_same_state(source, target)


def test_darknet_file_layout_is_bias_scale_mean_var_then_weights(tmp_path: Path) -> None:
    layer = DarkNet53(0.25, 0.25).module_list[0]
    layer.batch_norm.bias.data.fill_(1.0)
    layer.batch_norm.weight.data.fill_(2.0)
    layer.batch_norm.running_mean.fill_(3.0)
    layer.batch_norm.running_var.fill_(4.0)
    layer.conv.weight.data.fill_(5.0)
    save_darknet_weights(layer, tmp_path / "one.weights", DarknetHeader(0, 1, 0, seen=7))  # 0.1: int32 counter
    data = (tmp_path / "one.weights").read_bytes()
    assert len(data) == 16 + 4 * (4 * 8 + 8 * 3 * 9)
    values = np.frombuffer(data[16:], dtype="<f4")
    assert values[:32].tolist() == [1.0] * 8 + [2.0] * 8 + [3.0] * 8 + [4.0] * 8
    assert set(values[32:].tolist()) == {5.0}


def test_short_darknet_file_leaves_the_tail_and_truncated_file_is_refused(tmp_path: Path) -> None:
    source = randomized(DarkNet53(0.25, 0.25))
    path = tmp_path / "full.weights"
    save_darknet_weights(source, path)
    data = path.read_bytes()
    last_conv, _ = list(conv_layers(source))[-1]
    tail_bytes = 4 * (last_conv.weight.numel() + 4 * last_conv.out_channels)
    (tmp_path / "short.weights").write_bytes(data[:-tail_bytes])  # like darknet53.conv.74: fewer layers
    reporter = NullReporter()
    report = load_backbone_weights(DarkNet53(0.25, 0.25), tmp_path / "short.weights", reporter)
    assert len(report.missing) == 6 and reporter.warnings
    (tmp_path / "cut.weights").write_bytes(data[:-8])
    with pytest.raises(SimrecError, match="ends inside layer"):
        load_backbone_weights(DarkNet53(0.25, 0.25), tmp_path / "cut.weights")


def test_darknet_file_for_cspdarknet_is_refused(tmp_path: Path) -> None:
    save_darknet_weights(DarkNet53(0.25, 0.25), tmp_path / "d.weights")
    model = build_model(tiny_model_settings(), VOCAB)
    with pytest.raises(SimrecError, match="only darknet53 and vgg16"):
        load_backbone_weights(model, tmp_path / "d.weights")


def test_torchvision_vgg16_features_load_by_order(tmp_path: Path) -> None:
    donor = randomized(vgg16(weights=None).features)
    torch.save({f"features.{k}": v for k, v in donor.state_dict().items()}, tmp_path / "vgg16.pth")
    target = VGG16()
    report = load_backbone_weights(target, tmp_path / "vgg16.pth")
    assert report.fraction == 1.0
    assert torch.equal(target.module_list[0].conv.weight, donor[0].weight)
    assert torch.equal(target.module_list[16].conv.bias, donor[28].bias)


def test_torchvision_resnet_file_loads_under_resnet_prefix(tmp_path: Path) -> None:
    donor = randomized(resnet18(weights=None))
    torch.save(donor.state_dict(), tmp_path / "resnet18.pth")
    target = ResNet("resnet18")
    load_backbone_weights(target, tmp_path / "resnet18.pth")
    assert_same_state(donor, target.resnet)
