"""Answer referring expressions on images with a trained checkpoint or an exported model.

The file alone suffices: it holds the settings (input size, normalization), the vocabulary and the
weights. Each image is decoded once, letterboxed, and then only the small letterboxed canvas and the
picture-sized copy are kept, so a batch of huge photos does not hold their full decodes in memory. All the
expressions of one image go through one batched forward pass that encodes the image once (rows of several
images share a pass when they fit in `batch_size`). Boxes come back in original image pixels, clipped to the image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from simrec_cli.data.letterbox import LetterboxInfo, boxes_to_original, letterbox_image, mask_to_original
from simrec_cli.data.text import Vocabulary, tokenize
from simrec_cli.drawing import Annotation, PictureBase, draw_annotations, picture_base
from simrec_cli.errors import SimrecError, listed, quoted
from simrec_cli.model_files.loading import load_model
from simrec_cli.models.inference import InferenceModel
from simrec_cli.models.precision import PrecisionChoice, resolve_precision
from simrec_cli.predict.defaults import DEFAULT_BATCH_SIZE
from simrec_cli.predict.images import read_image
from simrec_cli.predict.output import OutputFolder
from simrec_cli.predict.sources import ImageRequest
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.runtimes.base import Runtime
from simrec_cli.runtimes.torch_runtime import TorchRuntime
from simrec_cli.settings import Settings

# The keys of every `--json` line, in order (documented in docs/prediction.md; changing them breaks users' scripts).
JSON_FIELDS = (
    "image",
    "expression",
    "box",
    "score",
    "mask",
    "mask_area",
    "oov_words",
    "width",
    "height",
    "picture",
    "error",
)


@dataclass(frozen=True)
class PredictionResult:
    """The answer to one (image, expression) pair, or the reason there is none (`error`)."""

    image: Path
    expression: str
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    mask: Path | None = None
    mask_area: int | None = None
    oov_words: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None
    picture: Path | None = None
    error: str | None = None
    unsaved: str | None = None  # why the picture and masks of this answer were not written (e.g. the disk is full)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The documented JSONL record: every key always present, null where it does not apply."""
        record = {
            "image": str(self.image),
            "expression": self.expression,
            "box": [round(value, 2) for value in self.box] if self.box is not None else None,
            "score": round(self.score, 4) if self.score is not None else None,
            "mask": str(self.mask) if self.mask is not None else None,
            "mask_area": self.mask_area,
            "oov_words": list(self.oov_words),
            "width": self.width,
            "height": self.height,
            "picture": str(self.picture) if self.picture is not None else None,
            "error": self.error,
        }
        return record


@dataclass(frozen=True)
class EncodedExpression:
    tokens: np.ndarray
    oov_words: tuple[str, ...]
    truncated: bool


def encode_expression(vocabulary: Vocabulary, expression: str, max_length: int) -> EncodedExpression:
    """Token ids of `expression` cut or padded to `max_length`, its unknown words, and whether it was cut."""
    words = tokenize(expression)
    if not words:
        raise SimrecError(f"expression {quoted(expression)} has no words", "describe the object in words")
    tokens, unknown = vocabulary.encode(expression, max_length)
    return EncodedExpression(tokens, tuple(dict.fromkeys(unknown)), len(words) > max_length)


@dataclass
class _LoadedImage:
    """What is kept of an image while its expressions wait for the model."""

    request: ImageRequest
    canvas: np.ndarray
    info: LetterboxInfo
    picture: PictureBase | None
    boxes: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)


class Predictor:
    """A model ready for inference in one runtime, plus what it needs to read inputs: settings and vocabulary.

    `Predictor.load` opens a checkpoint or an exported file (ONNX, OpenVINO IR) in the runtime and precision asked
    for, or the fastest this machine offers (see `simrec_cli.runtimes`); `predictor.runtime.describe()` says which
    runs and why. `compile(batch_sizes)` compiles a PyTorch forward for a few fixed batch sizes (a server's
    buckets); without it the model runs eagerly, which is faster for one-shot prediction.
    """

    def __init__(
        self,
        model: nn.Module | InferenceModel | Runtime,
        settings: Settings,
        vocabulary: Vocabulary,
        device: torch.device,
        precision: str = "fp32",
    ) -> None:
        if isinstance(model, nn.Module):
            model = InferenceModel(model.eval(), device, resolve_precision(precision, torch.device(device)))
        if isinstance(model, InferenceModel):
            model = TorchRuntime(model, Path("<in memory>"), settings)
        self.runtime = model
        self.settings = settings
        self.vocabulary = vocabulary
        self.device = model.device
        self._mean = torch.tensor(model.input_mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(model.input_std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255

    @classmethod
    def load(cls, path: Path, **options: Any) -> Predictor:
        """Open a checkpoint or exported file; `options` are `load_model`'s (device, precision, runtime, rows: the
        expressions to answer, None for as many as come, a server's case; reporter)."""
        loaded = load_model(path, **options)
        return cls(loaded.runtime, loaded.settings, loaded.vocabulary, loaded.runtime.device)

    @property
    def precision(self) -> PrecisionChoice:
        return self.runtime.precision

    def compile(self, batch_sizes: Sequence[int] = (1,)) -> None:
        """Compile the forward for these numbers of expressions per pass; other counts are padded up to one or
        split over several, by each size's measured time. Each size costs seconds to a minute to compile on a CPU."""
        self.runtime.compile(batch_sizes, self.input_shape, self.settings.dataset.max_token_length)

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.settings.dataset.input_shape)

    @property
    def has_mask(self) -> bool:
        return self.runtime.has_mask_head

    def encode(self, expression: str) -> EncodedExpression:
        """Token ids of the expression; an expression with no words left after tokenizing is an error."""
        return encode_expression(self.vocabulary, expression, self.settings.dataset.max_token_length)

    @torch.inference_mode()
    def forward(self, canvases: Sequence[np.ndarray], rows: Sequence[int], tokens: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on letterboxed canvases: row k pairs canvases[rows[k]] with tokens[k].

        Returns "boxes" [N, 5] (x1, y1, x2, y2, score in letterbox pixels) and, for mask models, "masks"
        [N, H, W] probabilities.
        """
        stacked = torch.from_numpy(np.stack(canvases)).to(self.device, non_blocking=True)
        images = (stacked.permute(0, 3, 1, 2).float() - self._mean) / self._std
        token_ids = torch.from_numpy(tokens).to(self.device)
        image_index = torch.as_tensor(rows, device=self.device)
        outputs = self.runtime(images, token_ids, image_index=image_index)
        result = {"boxes": outputs["boxes"].float().cpu().numpy()}
        if outputs.get("masks") is not None:
            result["masks"] = outputs["masks"].float().cpu().numpy()
        return result


def encode_requests(
    predictor: Predictor, requests: Sequence[ImageRequest], reporter: Reporter
) -> dict[str, EncodedExpression]:
    """Encode every distinct expression once, warning about unknown words and over-long expressions."""
    encoded: dict[str, EncodedExpression] = {}
    for request in requests:
        for expression in request.expressions:
            if expression in encoded:
                continue
            encoded[expression] = entry = predictor.encode(expression)
            if entry.oov_words:
                reporter.warning(
                    f"words not in the checkpoint's vocabulary, read as unknown: {listed(list(entry.oov_words))} "
                    f"(in {quoted(expression)})"
                )
            if entry.truncated:
                limit = predictor.settings.dataset.max_token_length
                reporter.warning(f"{quoted(expression)} is longer than {limit} words; only the first {limit} are read")
    return encoded


def _row_batches(requests: Sequence[ImageRequest], batch_size: int) -> Iterator[list[tuple[int, int]]]:
    """(request index, expression index) rows in order, cut into batches of at most `batch_size`."""
    batch: list[tuple[int, int]] = []
    for request_index, request in enumerate(requests):
        for expression_index in range(len(request.expressions)):
            batch.append((request_index, expression_index))
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def predict_requests(
    predictor: Predictor,
    requests: Sequence[ImageRequest],
    output_dir: Path | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    reporter: Reporter | None = None,
) -> Iterator[PredictionResult]:
    """Yield one result per (image, expression), image by image in request order.

    Every expression is checked before anything is read or written. An image that cannot be read yields an
    error result for each of its expressions and the rest go on. With `output_dir`, each image's picture
    (and each mask) is written there as soon as its last expression is answered; once a write fails (a full
    disk), no more are tried, and every answer still comes back, marked `unsaved` with the reason.
    """
    if batch_size < 1:
        raise SimrecError(f"batch size {batch_size} must be at least 1", "use --batch-size 1 or more")
    reporter = reporter or NullReporter()
    encoded = encode_requests(predictor, requests, reporter)
    output = OutputFolder(output_dir) if output_dir is not None else None
    unsaved: str | None = None
    loaded: dict[int, _LoadedImage] = {}
    finished: dict[int, list[PredictionResult]] = {}
    next_to_yield = 0
    batches = list(_row_batches(requests, batch_size))
    for batch in reporter.track(batches, len(batches), "predict"):
        for request_index in dict.fromkeys(index for index, _ in batch):
            if request_index in loaded or request_index in finished:
                continue
            request = requests[request_index]
            try:
                loaded[request_index] = _load(request, predictor.input_shape, keep_picture=output is not None)
            except SimrecError as error:
                reporter.warning(str(error))
                finished[request_index] = [
                    PredictionResult(request.image, text, error=str(error)) for text in request.expressions
                ]
        rows = [(index, expression) for index, expression in batch if index in loaded]
        if rows:
            _answer(predictor, rows, loaded, requests, encoded)
        for request_index in [
            index for index, item in loaded.items() if len(item.boxes) == len(item.request.expressions)
        ]:
            answers = _answers(loaded.pop(request_index), predictor, encoded)
            if output is not None and unsaved is None:
                try:
                    answers.save(output)
                except SimrecError as error:
                    unsaved = error.message
            finished[request_index] = answers.results(unsaved)
        while next_to_yield in finished:
            yield from finished.pop(next_to_yield)
            next_to_yield += 1


def _load(request: ImageRequest, input_shape: tuple[int, int], keep_picture: bool) -> _LoadedImage:
    image = read_image(request.image)
    canvas, info = letterbox_image(image, input_shape)
    return _LoadedImage(request, canvas, info, picture_base(image) if keep_picture else None)


def _answer(
    predictor: Predictor,
    rows: list[tuple[int, int]],
    loaded: dict[int, _LoadedImage],
    requests: Sequence[ImageRequest],
    encoded: dict[str, EncodedExpression],
) -> None:
    """One forward pass over `rows`, each image's canvas sent once and repeated per expression on device."""
    order = list(dict.fromkeys(index for index, _ in rows))
    position = {request_index: slot for slot, request_index in enumerate(order)}
    tokens = np.stack([encoded[requests[index].expressions[expression]].tokens for index, expression in rows])
    outputs = predictor.forward([loaded[index].canvas for index in order], [position[i] for i, _ in rows], tokens)
    for row, (request_index, _) in enumerate(rows):
        loaded[request_index].boxes.append(outputs["boxes"][row])
        if "masks" in outputs:
            loaded[request_index].masks.append(outputs["masks"][row])


@dataclass
class _Answers:
    """One image's answers in its own pixels, ready to be described and (optionally) drawn and saved."""

    item: _LoadedImage
    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 in original pixels
    scores: np.ndarray  # [N]
    masks: list[np.ndarray]
    oov_words: list[tuple[str, ...]]
    mask_paths: list[Path | None] = field(default_factory=list)
    picture_path: Path | None = None

    def save(self, output: OutputFolder) -> None:
        """Write the masks and the annotated picture (each file complete, none replacing another)."""
        picture = None
        if self.item.picture is not None:
            annotations = [
                Annotation(text, tuple(self.boxes[k]), float(self.scores[k]), self.masks[k] if self.masks else None)
                for k, text in enumerate(self.item.request.expressions)
            ]
            picture = draw_annotations(self.item.picture, annotations)
        self.picture_path, masks = output.save(self.item.request.image, picture, self.masks)
        self.mask_paths = list(masks)

    def results(self, unsaved: str | None) -> list[PredictionResult]:
        info = self.item.info
        return [
            PredictionResult(
                image=self.item.request.image,
                expression=text,
                box=tuple(float(v) for v in self.boxes[k]),
                score=float(self.scores[k]),
                mask=self.mask_paths[k] if self.mask_paths else None,
                mask_area=int(self.masks[k].sum()) if self.masks else None,
                oov_words=self.oov_words[k],
                width=info.width,
                height=info.height,
                picture=self.picture_path,
                unsaved=unsaved if self.picture_path is None and self.item.picture is not None else None,
            )
            for k, text in enumerate(self.item.request.expressions)
        ]


def _answers(item: _LoadedImage, predictor: Predictor, encoded: dict[str, EncodedExpression]) -> _Answers:
    """Map one image's answers back to its pixels."""
    raw = np.stack(item.boxes)
    boxes = np.asarray(boxes_to_original(raw[:, :4].astype(np.float64), item.info))
    threshold = predictor.settings.model.head.mask_threshold
    masks = [mask_to_original(mask > threshold, item.info) for mask in item.masks]
    oov = [encoded[text].oov_words for text in item.request.expressions]
    return _Answers(item, boxes, raw[:, 4], masks, oov)
