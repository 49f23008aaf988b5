"""Which annotation entries have their image where training will read it, found before prepare-data writes anything.

A missing image would otherwise surface at the first training step that draws it, after the run had started. Each
distinct file is looked up once; the first missing one is kept with what referred to it, so the one error line can
name a file to look for and the hint the folder it belongs in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from simrec_cli.data.annotations import Annotations
from simrec_cli.data.images import image_file, image_folder, where_images_belong
from simrec_cli.errors import SimrecError

SKIP_OPTION = "--skip-missing"


@dataclass
class ImagePresence:
    """Looks up the images of `dataset`'s entries under `image_root`, remembering every answer."""

    dataset: str
    image_root: Path
    found: dict[Path, bool] = field(default_factory=dict)
    first_missing: tuple[Path, str, dict] | None = None  # path, what referred to it, its entry

    def present(self, entry: dict, referrer: str) -> bool:
        """Whether the image of `entry` (which `referrer` names, e.g. "ref 12") exists."""
        path = image_file(self.dataset, entry, self.image_root)
        exists = self.found.get(path)
        if exists is None:
            exists = self.found[path] = path.is_file()
            if not exists and self.first_missing is None:
                self.first_missing = (path, referrer, entry)
        return exists

    @property
    def missing(self) -> int:
        return sum(not exists for exists in self.found.values())

    def report(self, skip_missing: bool, left_out: str) -> str | None:
        """None when every image was found. Otherwise an error naming the count, the first missing file and where
        the images belong; with `skip_missing`, the warning that `left_out` (e.g. "refs") were left out instead."""
        if self.first_missing is None:
            return None
        path, referrer, entry = self.first_missing
        counts = f"{self.missing:,} of {len(self.found):,} images"
        if not any(self.found.values()):  # nothing would be left: a folder in the wrong place, not a few gaps
            raise SimrecError(
                f"none of the images exists ({len(self.found):,} looked for; first: {path}, for {referrer})",
                where_images_belong(self.dataset, entry, self.image_root),
            )
        if not skip_missing:
            raise SimrecError(
                f"{counts} are missing (first: {path}, for {referrer})",
                f"{where_images_belong(self.dataset, entry, self.image_root)}, or pass {SKIP_OPTION} to leave out "
                f"the {left_out} whose image is missing",
            )
        return f"left out the {left_out} of {counts}, which are missing (first: {path}, for {referrer})"


def entries_with_images(
    dataset: str, anns: Annotations, image_root: Path, skip_missing: bool
) -> tuple[Annotations, list[str]]:
    """`anns` with only the entries whose image exists, and the warning about the others (with `skip_missing`;
    without it, a missing image is an error). Every entry is checked, so the count covers the whole file."""
    presence = ImagePresence(dataset, image_root)
    kept: Annotations = {}
    for split, entries in anns.items():
        kept[split] = [
            entry
            for position, entry in enumerate(entries)
            if presence.present(entry, f"entry {position} of split '{split}'")
        ]
    warning = presence.report(skip_missing, "entries")
    return kept, [warning] if warning else []


def missing_image_folder(dataset: str, entries: list[dict], image_root: Path) -> tuple[Path, dict] | None:
    """The first image folder the entries need that does not exist (merge reads one per data_source), with an entry
    that needs it; None when every folder is there."""
    needed: dict[Path, dict] = {}
    for entry in entries:
        needed.setdefault(image_folder(dataset, entry, image_root), entry)
    return next(((folder, entry) for folder, entry in needed.items() if not folder.is_dir()), None)
