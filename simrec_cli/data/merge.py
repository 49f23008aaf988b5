"""The merged pre-training set: every training entry of the prepared datasets, minus the evaluation images.

A model pre-trained on an image of RefCOCO/RefCOCO+/RefCOCOg val or test would be evaluated on what it saw,
so every COCO image in any of those splits is removed from the merged training split, and the count reported.
Every entry's image must lie in `<data_root>/images/<folder of its data_source>/`, checked before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from simrec_cli.data.annotations import Annotations, load_annotations
from simrec_cli.data.image_presence import entries_with_images
from simrec_cli.errors import SimrecError
from simrec_cli.reporting import Reporter
from simrec_cli.settings import DatasetSettings

COCO_DATASETS = ("refcoco", "refcoco+", "refcocog")
# prepared dataset -> data_source written into merge entries (the image folder under images/)
REFER_SOURCES = {"refcoco": "coco", "refcoco+": "coco", "refcocog": "coco", "referit": "refclef"}


def _prepared(dataset: str, roots: list[Path]) -> Annotations | None:
    for root in roots:
        path = DatasetSettings(name=dataset, data_root=root).resolved_ann_path()
        if path.is_file():
            return load_annotations(path, dataset)
    return None


def build_merge(
    data_root: Path, output_root: Path, *, flickr: Path | None, vg: Path | None, skip_missing: bool, reporter: Reporter
) -> tuple[Annotations, int, list[str]]:
    """The merge annotations, how many evaluation images were removed, and warnings (entries left out for a missing
    image, with `skip_missing`). An existing merge.json (SimREC's download) is validated and its images checked."""
    settings = DatasetSettings(name="merge", data_root=data_root)
    existing = settings.resolved_ann_path()
    if flickr is None and vg is None and existing.is_file():
        reporter.info(f"validating {existing} (pass --flickr/--vg to build a new merged set)")
        anns, warnings = entries_with_images(
            "merge", load_annotations(existing, "merge"), settings.resolved_image_path(), skip_missing
        )
        return anns, 0, warnings

    roots = list(dict.fromkeys([output_root, data_root]))
    sources: dict[str, tuple[str, Annotations]] = {}
    for dataset, data_source in REFER_SOURCES.items():
        anns = _prepared(dataset, roots)
        if anns is not None:
            sources[dataset] = (data_source, anns)
        elif dataset in COCO_DATASETS:
            reporter.warning(f"{dataset} is not prepared: images of its val/test splits cannot be removed from merge")
    for dataset, path in (("flickr", flickr), ("vg", vg)):
        if path is not None:
            hint = f"check the path given to --{dataset} (a {dataset}.json in SimREC's format; see docs/data.md)"
            sources[dataset] = (dataset, load_annotations(path, dataset, missing_hint=hint))
    if not sources:
        raise SimrecError(
            f"nothing to merge: no prepared refcoco/refcoco+/refcocog/refclef under {data_root}, no --flickr/--vg",
            "prepare the REFER datasets first, or give --flickr FILE / --vg FILE",
        )

    held_out = {
        entry["iid"]
        for dataset in COCO_DATASETS
        if dataset in sources
        for split, entries in sources[dataset][1].items()
        if split != "train"
        for entry in entries
    }
    merged: Annotations = {"train": [], "val": []}
    removed: set = set()
    for dataset, (data_source, anns) in sources.items():
        for split in merged:
            for entry in anns.get(split, []):
                if split == "train" and data_source == "coco" and entry["iid"] in held_out:
                    removed.add(entry["iid"])
                    continue
                object_id = f"{dataset}/{entry['mask_id']}" if "mask_id" in entry else len(merged[split])
                merged[split].append({**entry, "data_source": data_source, "mask_id": object_id})
    reporter.info(f"merge: {len(removed)} COCO images of RefCOCO/+/g val/test removed from train")
    kept, warnings = entries_with_images("merge", merged, settings.resolved_image_path(), skip_missing)
    return kept, len(removed), warnings
