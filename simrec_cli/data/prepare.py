"""`prepare_dataset`: REFER files (or SimREC's flickr/vg/merge JSONs, or the generator) to a prepared dataset.

The REFER conversion follows SimREC's data_process.py: training splits get one entry per ref (object) with all
its sentences, evaluation splits one entry per sentence; `mask_id` is the ref_id; refclef's three broken
images are skipped. Problems are counted over the whole input and reported once, not one at a time.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

from simrec_cli.data.annotations import Annotations, box_problem, load_annotations
from simrec_cli.data.categories import COCO_CATEGORY_IDS
from simrec_cli.data.image_presence import ImagePresence, entries_with_images
from simrec_cli.data.images import REFCLEF_BROKEN_IMAGES
from simrec_cli.data.masks import segmentation_to_rle
from simrec_cli.data.merge import build_merge
from simrec_cli.data.prepared import (
    PreparedObjects,
    PrepareSummary,
    check_prepared_outputs,
    output_settings,
    write_prepared,
)
from simrec_cli.data.refer import ReferData, in_split, load_refer, refer_name, resolve_split_by, splits_for
from simrec_cli.data.synthetic import generate_synthetic
from simrec_cli.errors import SimrecError, quoted
from simrec_cli.reporting import NullReporter, Reporter
from simrec_cli.settings import DatasetSettings
from simrec_cli.settings.dataset import DATASET_LAYOUT
from simrec_cli.storage.targets import check_writable_dir, new_folders_removed_on_failure

REFER_DATASETS = ("refcoco", "refcoco+", "refcocog", "referit")


def canonical_dataset(name: str) -> str:
    """The settings name of a dataset (REFER's `refclef` is SimREC's `referit`)."""
    return "referit" if name == "refclef" else name


def _category_index(refer: ReferData, dataset: str) -> dict[int, int]:
    ids = COCO_CATEGORY_IDS if dataset != "referit" and set(refer.categories) <= set(COCO_CATEGORY_IDS) else None
    return {category: index for index, category in enumerate(ids or refer.categories)}


def _refer_objects(refer: ReferData, refs: list[dict], categories: dict[int, int]) -> PreparedObjects:
    """Every annotation of every image a kept ref lies in, with category indices as in the entries."""
    images = {ref["image_id"] for ref in refs}
    rows: dict[str, list[list[float]]] = {}
    for ann in refer.annotations.values():
        if ann["image_id"] in images:
            if box_problem(ann.get("bbox")):
                continue  # an invalid box is of no use beside the others; kept refs' boxes are checked already
            box = [float(value) for value in ann["bbox"]]
            rows.setdefault(str(ann["image_id"]), []).append([*box, categories.get(ann["category_id"], -1)])
    names = {index: refer.category_names[c] for c, index in categories.items() if c in refer.category_names}
    return PreparedObjects(rows, names)


def _problem(count: int, what: str, example: str, skip_invalid: bool) -> str:
    message = f"{count} {what} (first: {example})"
    if not skip_invalid:
        raise SimrecError(message, "fix the data, or pass --skip-invalid to leave those refs out")
    return f"left out {message}"


def _refer_entries(
    refer: ReferData, dataset: str, split_by: str, image_root: Path, skip_invalid: bool
) -> tuple[Annotations, list[dict], list[str]]:
    """The annotation entries per split, the refs kept (for masks), and warnings about refs left out."""
    categories = _category_index(refer, dataset)
    unknown: list[str] = []
    bad_boxes: list[str] = []
    images = ImagePresence(dataset, image_root)
    kept: list[dict] = []
    anns: Annotations = {split: [] for split in splits_for(dataset, split_by)}
    for ref in refer.refs:
        splits = [split for split in anns if in_split(ref["split"], split)]
        if not splits:
            continue
        if dataset == "referit" and ref["image_id"] in REFCLEF_BROKEN_IMAGES:
            continue
        ann = refer.annotations.get(ref["ann_id"])
        if ann is None or ref["image_id"] not in refer.images:
            unknown.append(f"ref {ref['ref_id']} -> annotation {ref['ann_id']}, image {ref['image_id']}")
            continue
        image = refer.images[ref["image_id"]]
        box_error = box_problem(ann.get("bbox"), image.get("width"), image.get("height"))
        if box_error:
            bad_boxes.append(f"ref {ref['ref_id']} -> annotation {ref['ann_id']}: {box_error}")
            continue
        if not images.present({"iid": ref["image_id"]}, f"ref {ref['ref_id']}"):
            continue
        kept.append(ref)
        base = {"iid": ref["image_id"], "bbox": ann["bbox"], "cat_id": categories.get(ann["category_id"], -1)}
        sentences = [sentence["sent"] for sentence in ref["sentences"]]
        for split in splits:
            if split == "train":
                anns[split].append({**base, "refs": sentences, "mask_id": ref["ref_id"]})
            else:
                anns[split].extend({**base, "refs": [sentence], "mask_id": ref["ref_id"]} for sentence in sentences)
    warnings = []
    if unknown:
        warnings.append(
            _problem(
                len(unknown),
                "refs point to annotations or images missing from instances.json",
                unknown[0],
                skip_invalid,
            )
        )
    if bad_boxes:
        warnings.append(
            _problem(len(bad_boxes), "refs have an invalid box in instances.json", bad_boxes[0], skip_invalid)
        )
    missing = images.report(skip_invalid, "refs")
    if missing:
        warnings.append(missing)
    return anns, kept, warnings


def _refer_masks(refer: ReferData, refs: list[dict], reporter: Reporter) -> dict[int, dict]:
    masks: dict[int, dict] = {}
    for ref in reporter.track(refs, len(refs), "masks"):
        if ref["ref_id"] in masks:
            continue
        ann = refer.annotations[ref["ann_id"]]
        image = refer.images[ref["image_id"]]
        try:
            masks[ref["ref_id"]] = segmentation_to_rle(ann["segmentation"], image["height"], image["width"])
        except (KeyError, ValueError, TypeError) as exc:
            raise SimrecError(
                f"annotation {ann['id']} (ref {ref['ref_id']}) has an unreadable segmentation: {exc}",
                "fix instances.json or prepare without --generate-mask",
            ) from exc
    return masks


def _prepare_refer(
    dataset: str,
    data_root: Path,
    output_root: Path,
    split_by: str | None,
    generate_mask: bool,
    skip_invalid: bool,
    word_vectors: str | None,
    reporter: Reporter,
) -> PrepareSummary:
    split_by = resolve_split_by(dataset, split_by)
    image_root = DatasetSettings(name=dataset, data_root=data_root).resolved_image_path()
    reporter.info(f"reading REFER {refer_name(dataset)} ({split_by}) from {data_root / refer_name(dataset)}")
    refer = load_refer(data_root / refer_name(dataset), dataset, split_by)
    anns, kept, warnings = _refer_entries(refer, dataset, split_by, image_root, skip_invalid)
    objects = _refer_objects(refer, kept, _category_index(refer, dataset))
    masks = _refer_masks(refer, kept, reporter) if generate_mask else None
    skipped = len({ref["ref_id"] for ref in refer.refs}) - len({ref["ref_id"] for ref in kept})
    summary = write_prepared(
        dataset,
        output_root,
        anns,
        masks=masks,
        word_vectors=word_vectors,
        reporter=reporter,
        split_by=split_by,
        skipped=skipped,
        objects=objects,
    )
    summary.warnings[:0] = warnings
    return summary


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while the conversion builds millions of small objects.

    The annotations, refs and entries hold no reference cycles, yet each allocation burst makes the collector
    walk every object alive; at RefCOCO scale that was a third of prepare-data's time. Memory is unaffected:
    reference counting still frees everything that is dropped.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# The options of prepare-data that only some datasets read, with those datasets; any other dataset refuses them
# (an option that changed nothing would leave the user believing it had).
OPTION_DATASETS: dict[str, tuple[str, ...]] = {
    "--split-by": REFER_DATASETS,
    "--generate-mask": (*REFER_DATASETS, "synthetic"),  # synthetic always writes its exact masks
    "--skip-missing": (*REFER_DATASETS, "flickr", "vg", "merge"),
    "--num-images": ("synthetic",),
    "--seed": ("synthetic",),
    "--image-size": ("synthetic",),
    "--flickr": ("flickr", "merge"),
    "--vg": ("vg", "merge"),
}
OPTION_NOTES = {"--generate-mask": " (flickr, vg and merge have boxes only, no masks)"}


def refuse_unused_options(dataset: str, given: dict[str, object]) -> None:
    """One error for the first option given (not None, not False) that `dataset` does not read."""
    for option, value in given.items():
        if value is None or value is False or dataset in OPTION_DATASETS[option]:
            continue
        users = ["refclef" if name == "referit" else name for name in OPTION_DATASETS[option]]
        listed = f"{', '.join(users[:-1])} and {users[-1]}" if len(users) > 1 else users[0]
        raise SimrecError(
            f"{option} is for {listed}; {dataset} does not read it{OPTION_NOTES.get(option, '')}",
            f"leave {option} out",
        )


def _downloaded_annotations(dataset: str, path: Path, option: str, given: bool) -> Annotations:
    """SimREC's flickr.json / vg.json from `path` (given with `option`, or the default place under anns/)."""
    source = "SimREC's flickr.json" if dataset == "flickr" else f"a {dataset}.json in SimREC's format"
    where = f"put {source} (see docs/data.md) at {path}, or give it with {option} FILE"
    hint = f"check the path given to {option}" if given else where
    return load_annotations(path, dataset, missing_hint=hint)


def _prepare_downloaded(
    dataset: str, data_root: Path, path: Path | None, skip_missing: bool
) -> tuple[Annotations, list[str]]:
    """flickr/vg: the given (or default) JSON, validated, with the entries whose image is missing found."""
    settings = DatasetSettings(name=dataset, data_root=data_root)
    anns = _downloaded_annotations(dataset, path or settings.resolved_ann_path(), f"--{dataset}", path is not None)
    return entries_with_images(dataset, anns, settings.resolved_image_path(), skip_missing)


def _image_folder_note(dataset: str, data_root: Path, output_root: Path) -> list[str]:
    """With --output-dir elsewhere, training reads the images from the output root unless told where they are."""
    if output_root.resolve() == data_root.resolve() or dataset == "synthetic":
        return []
    images = DatasetSettings(name=dataset, data_root=data_root).resolved_image_path()
    return [f"the images stay in {images}: train with dataset.data_root={output_root} dataset.image_path={images}"]


@cyclic_gc_paused()
def prepare_dataset(
    dataset: str,
    data_root: Path,
    *,
    split_by: str | None = None,
    generate_mask: bool = False,
    output_dir: Path | None = None,
    skip_invalid: bool = False,
    word_vectors: str | None = None,
    reporter: Reporter | None = None,
    num_images: int | None = None,
    seed: int | None = None,
    image_size: int | None = None,
    flickr: Path | None = None,
    vg: Path | None = None,
) -> PrepareSummary:
    """Prepare `dataset` from the files under `data_root`; outputs go to `output_dir` (default `data_root`).

    flickr and vg read `flickr`/`vg` (default `<data_root>/anns/<dataset>.json`); merge reads the prepared REFER
    datasets plus `flickr` and `vg`. Every referenced image must exist under `<data_root>/images/` (`skip_invalid`
    leaves out what lacks one), and an option the dataset does not read is refused.
    """
    reporter = reporter or NullReporter()
    dataset = canonical_dataset(dataset)
    output_root = output_dir or data_root
    if dataset not in DATASET_LAYOUT:
        choices = "refcoco, refcoco+, refcocog, refclef, flickr, vg, merge or synthetic"
        raise SimrecError(f"unknown dataset {quoted(dataset)}", f"choose {choices}")
    refuse_unused_options(
        dataset,
        {"--split-by": split_by, "--generate-mask": generate_mask, "--skip-missing": skip_invalid,
         "--num-images": num_images, "--seed": seed, "--image-size": image_size, "--flickr": flickr, "--vg": vg},
    )  # fmt: skip
    option = "--output-dir" if output_dir else "--data-root or --output-dir"
    check_writable_dir(output_root, "prepared dataset", option)
    check_prepared_outputs(dataset, output_root, option)
    layout = output_settings(dataset, output_root)
    created = [layout.resolved_ann_path().parent, layout.resolved_mask_path().parent]
    if dataset == "synthetic":
        created.append(layout.resolved_image_path().parent)
    with new_folders_removed_on_failure(*created):  # a failed prepare leaves no empty anns/ or masks/ behind
        if dataset in REFER_DATASETS:
            summary = _prepare_refer(
                dataset, data_root, output_root, split_by, generate_mask, skip_invalid, word_vectors, reporter
            )
        elif dataset == "synthetic":
            synthetic = {"num_images": num_images, "seed": seed, "image_size": image_size}
            return generate_synthetic(
                output_root, reporter=reporter, word_vectors=word_vectors,
                **{key: value for key, value in synthetic.items() if value is not None},
            )  # fmt: skip
        else:
            removed = 0
            if dataset == "merge":
                anns, removed, warnings = build_merge(
                    data_root, output_root, flickr=flickr, vg=vg, skip_missing=skip_invalid, reporter=reporter
                )
            else:
                anns, warnings = _prepare_downloaded(dataset, data_root, flickr or vg, skip_invalid)
            summary = write_prepared(
                dataset, output_root, anns, masks=None, word_vectors=word_vectors, reporter=reporter,
                removed_images=removed,
            )  # fmt: skip
            summary.warnings[:0] = warnings
    summary.warnings.extend(_image_folder_note(dataset, data_root, output_root))
    return summary
