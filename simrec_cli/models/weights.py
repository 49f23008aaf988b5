"""Loading weights loudly: every load reports what matched, what is missing, what was unexpected.

The original toolbox loaded with `strict=False` and said nothing, so its fine-tuning config trained from a
random, frozen backbone without anyone noticing. Here a load that matches nothing, or too little, fails.
Accepted files: original SimREC checkpoints (v2 `{'state_dict': ...}`, v1 with `module.` prefixes), ours
(`{'model': state_dict, ...}`), bare state_dicts, YOLOv5-style CSPDarkNet files (`model.N...` keys),
torchvision VGG16/ResNet files, and darknet `.weights` files (DarkNet53, VGG16).
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.models.backbones import VGG16, DarkNet53, ResNet, StagedBackbone
from simrec_cli.models.darknet_weights import load_darknet_weights
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.schemas.files import path_problem
from simrec_cli.settings import ModelSettings

BACKBONE_MIN_FRACTION = 0.9
CHECKPOINT_MIN_FRACTION = 0.9
DDP_PREFIX = "module."
BACKBONE_PREFIX = "visual_encoder."
SHOWN_NAMES = 5


@dataclass
class LoadReport:
    """Outcome of a load, by state_dict entry name."""

    what: str
    total: int
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatched: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Share of the module's entries that were loaded."""
        return len(self.matched) / self.total if self.total else 0.0

    @property
    def complete(self) -> bool:
        """Every entry of the module and of the file matched by name and shape."""
        return not (self.missing or self.unexpected or self.shape_mismatched)

    def summary(self, verb: str = "loaded", shown: int = SHOWN_NAMES) -> str:
        """One line: how many entries matched, then the first `shown` names of each kind that did not."""

        def listed(label: str, names: list[str]) -> str:
            text = ", ".join(names[:shown])
            if len(names) > shown:
                text += f", ... (+{len(names) - shown})"
            return f"; {len(names)} {label}" + (f" ({text})" if names else "")

        return (
            f"{self.what}: {verb} {len(self.matched)}/{self.total} entries"
            + listed("missing", self.missing)
            + listed("unexpected", self.unexpected)
            + listed("with another shape (file vs model)", self.shape_mismatched)
        )


def strip_ddp_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the `module.` prefix a DistributedDataParallel wrapper adds (v1 checkpoints have it)."""
    return {key.removeprefix(DDP_PREFIX): value for key, value in state_dict.items()}


def extract_state_dict(content: Any, source: str) -> dict[str, torch.Tensor]:
    """The state_dict inside a checkpoint: ours (`model`), the original's (`state_dict`), or a bare one."""
    if isinstance(content, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(content.get(key), Mapping):
                content = content[key]
                break
        tensors = {k: v for k, v in content.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors:
            return strip_ddp_prefix(tensors)
    raise SimrecError(
        f"{source} holds no model weights (expected a state_dict, or a dict with 'model' or 'state_dict')",
        "pass a SimREC/simrec checkpoint or a backbone weights file",
    )


def torch_load_safely(path: Path, mmap: bool = False) -> Any:
    """torch.load with `weights_only=True`: no code from the file runs, whatever it holds.

    torch warns about pickles of a protocol it did not write before refusing them; the caller's error line
    already says what is wrong with such a file, so the warning is not shown. With `mmap`, tensors are mapped,
    not read: the file's pickle is checked at the cost of its small index (for zip-format files).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def refused_pickle(path: Path, exc: BaseException, fix: str) -> SimrecError | None:
    """The one line for a file whose pickle would call code when loaded (torch refused it; nothing ran), or None
    when `exc` is another failure. torch's own message is a paragraph of advice to turn the safety off."""
    wanted = re.search(r"GLOBAL (\S+)", str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
    if wanted is None:
        return None
    return SimrecError(f"refused to load {path}: it would call {quoted(wanted[1])} when loaded; nothing in it ran", fix)


WEIGHTS_FIX = "save only the weights, e.g. torch.save(ckpt['model'].float().state_dict(), 'weights.pth')"


def read_weights_file(path: Path, setting: str, mmap: bool = False) -> Any:
    """torch.load with `weights_only=True` (no code from the file runs); missing or foreign files are user errors.

    `mmap` maps the tensors instead of reading them (zip-format files; others are read): a cheap check at start.
    """
    path = Path(path)
    problem = path_problem(path)
    if problem is not None:
        raise SimrecError(f"weights file {path} {problem}", f"download it, or fix {setting}")
    try:
        try:
            return torch_load_safely(path, mmap=mmap)
        except RuntimeError as exc:
            if not mmap or "mmap" not in str(exc):
                raise
            return torch_load_safely(path)  # a legacy (not zip) file cannot be mapped
    except Exception as exc:  # torch raises several types for truncated or foreign files
        refused = refused_pickle(path, exc, f"{WEIGHTS_FIX}; or fix {setting}")
        if refused is not None:
            raise refused from exc
        if isinstance(exc, pickle.UnpicklingError | RuntimeError | EOFError | OSError | ValueError):
            unreadable = f"{path} is not a readable PyTorch weights file ({type(exc).__name__})"
            raise SimrecError(unreadable, f"check the file, or fix {setting}") from exc
        raise


def require_pretrained_files(model: ModelSettings, vl_pretrain_weight: Path | None) -> None:
    """Check, before any data or model is built, that the weights a training start loads are readable and hold no
    code: the backbone's (when `pretrained`) and `train.vl_pretrain_weight`'s. Their tensors are mapped, not read."""
    backbone = model.visual_backbone
    if backbone.pretrained and not backbone.pretrained_weight_path.endswith(".weights"):
        setting = "model.visual_backbone.pretrained_weight_path (or set model.visual_backbone.pretrained=false)"
        read_weights_file(Path(backbone.pretrained_weight_path), setting, mmap=True)
    if vl_pretrain_weight is not None:
        read_weights_file(vl_pretrain_weight, "train.vl_pretrain_weight", mmap=True)


def _embedding_mismatch(name: str, stored: torch.Size, expected: torch.Size, what: str) -> SimrecError:
    return SimrecError(
        f"{what}: the word embedding {name} has {stored[0]} words x {stored[1]} dims, this model has "
        f"{expected[0]} words x {expected[1]} dims",
        "build the model with the vocabulary (and word vectors) the checkpoint was trained with: simrec "
        "checkpoints carry theirs; for an original SimREC checkpoint prepare the data from the same annotations",
    )


def compare_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> LoadReport:
    """Which entries of `state_dict` fit `module` by name and shape, and which are missing, unexpected or reshaped.

    A word embedding of another size gets its own error: it means another vocabulary, not another model.
    """
    own = module.state_dict()
    report = LoadReport(what, len(own))
    for name, value in state_dict.items():
        if name not in own:
            report.unexpected.append(name)
        elif value.shape != own[name].shape:
            if name.endswith("embedding.weight"):
                raise _embedding_mismatch(name, value.shape, own[name].shape, what)
            report.shape_mismatched.append(f"{name} {tuple(value.shape)} vs {tuple(own[name].shape)}")
        else:
            report.matched.append(name)
    report.missing = [name for name in own if name not in state_dict]
    return report


def load_state_dict_checked(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    min_fraction: float,
    what: str,
    reporter: Reporter | None = None,
) -> LoadReport:
    """Load the entries that match by name and shape; report the rest; refuse a load that matches too little."""
    reporter = reporter or NullReporter()
    if isinstance(state_dict, Mapping) and not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        state_dict = extract_state_dict(state_dict, what)
    state_dict = strip_ddp_prefix(state_dict)
    report = compare_state_dict(module, state_dict, what)
    loadable = {name: state_dict[name] for name in report.matched}
    if not report.matched or report.fraction < min_fraction:
        raise SimrecError(
            f"refusing to load: {report.summary()} (at least {min_fraction:.0%} must match)",
            "the file is for another model or backbone, or another width/depth; check the path and model settings",
        )
    module.load_state_dict(loadable, strict=False)
    reporter.info(report.summary())
    if not report.complete:
        reporter.warning(f"{what}: not everything matched; the entries listed above keep their current values")
    return report


def load_pretrained_checkpoint(
    model: nn.Module, path_or_dict: str | Path | Mapping[str, Any], reporter: Reporter | None = None
) -> LoadReport:
    """Full-model weights: an original SimREC checkpoint (v1 or v2), ours, or a bare state_dict."""
    if isinstance(path_or_dict, Mapping):
        content, what = path_or_dict, "checkpoint"
    else:
        content, what = read_weights_file(Path(path_or_dict), "train.vl_pretrain_weight"), f"checkpoint {path_or_dict}"
    state_dict = extract_state_dict(content, what)
    return load_state_dict_checked(
        model, state_dict, min_fraction=CHECKPOINT_MIN_FRACTION, what=what, reporter=reporter
    )


def _vgg_from_torchvision(backbone: VGG16, state_dict: dict[str, torch.Tensor]) -> tuple[nn.Module, dict]:
    """torchvision's `features.N` convs, in order, onto the VGG part (first 18 layers) of our VGG16."""
    vgg_part = nn.ModuleList(list(backbone.module_list)[: VGG16.vgg_layers])
    ours = [f"{i}.conv" for i, layer in enumerate(vgg_part) if hasattr(layer, "conv")]
    theirs = sorted(
        {key.rsplit(".", 1)[0] for key in state_dict if key.startswith("features.") and state_dict[key].dim() == 4},
        key=lambda name: int(name.split(".")[1]),
    )
    mapped = {}
    for our_name, their_name in zip(ours, theirs, strict=False):
        for kind in ("weight", "bias"):
            if f"{their_name}.{kind}" in state_dict:
                mapped[f"{our_name}.{kind}"] = state_dict[f"{their_name}.{kind}"]
    return vgg_part, mapped


def load_backbone_weights(model: nn.Module, path: str | Path, reporter: Reporter | None = None) -> LoadReport:
    """Pre-trained backbone weights into `model` (a SimREC/MCN model or the backbone itself)."""
    reporter = reporter or NullReporter()
    backbone: StagedBackbone = getattr(model, "visual_encoder", model)
    path = Path(path)
    what = f"backbone weights {path}"
    if not path.is_file():
        raise SimrecError(
            f"backbone weights {path} not found",
            "download them (SimREC's model zoo) and set model.visual_backbone.pretrained_weight_path, "
            "or set model.visual_backbone.pretrained=false",
        )
    if path.suffix == ".weights":
        return _load_darknet_backbone(backbone, path, what, reporter)
    state_dict = extract_state_dict(read_weights_file(path, "model.visual_backbone.pretrained_weight_path"), what)
    if any(key.startswith(BACKBONE_PREFIX) for key in state_dict):
        reporter.info(f"{what} is a full-model checkpoint: loading its visual_encoder part")
        state_dict = {k[len(BACKBONE_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(BACKBONE_PREFIX)}
    target: nn.Module = backbone
    if isinstance(backbone, ResNet) and not any(key.startswith("resnet.") for key in state_dict):
        state_dict = {f"resnet.{key}": value for key, value in state_dict.items()}
    elif isinstance(backbone, VGG16) and any(key.startswith("features.") for key in state_dict):
        target, state_dict = _vgg_from_torchvision(backbone, state_dict)
    return load_state_dict_checked(target, state_dict, min_fraction=BACKBONE_MIN_FRACTION, what=what, reporter=reporter)


def _load_darknet_backbone(backbone: StagedBackbone, path: Path, what: str, reporter: Reporter) -> LoadReport:
    if not isinstance(backbone, (DarkNet53, VGG16)):
        raise SimrecError(
            f"{path} is a darknet file, which only darknet53 and vgg16 backbones read",
            "use a .pth file for this backbone, or set model.visual_backbone.name=darknet53",
        )
    result = load_darknet_weights(backbone, path)
    names = {id(module): name for name, module in backbone.named_modules()}

    def entries(layers: list) -> list[str]:
        found = []
        for conv, bn in layers:
            for module in (conv, bn):
                if module is not None:
                    found += [f"{names[id(module)]}.{key}" for key in module.state_dict()]
        return found

    report = LoadReport(what, len(backbone.state_dict()), entries(result.loaded), entries(result.not_in_file))
    if result.unused_values:
        report.unexpected.append(f"{result.unused_values} trailing values (layers this backbone does not have)")
    if not result.loaded or len(result.loaded) < len(result.loaded + result.not_in_file) / 2:
        raise SimrecError(f"refusing to load: {report.summary()}", "the file is for another network")
    reporter.info(report.summary())
    if result.not_in_file:
        reporter.warning(f"{what}: {len(result.not_in_file)} conv layers are not in the file and stay random")
    return report
