"""What every importer returns: the dataset plus an honest report of what it read and repaired."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..coco import Dataset


@dataclass
class ImportOptions:
    images: Path | None = None  # images folder (sizes, file resolution)
    category: str | None = None  # keypoint category name or id to import
    bbox_margin: float = 0.1  # bbox from keypoints: padding as a fraction of the keypoints' extent
    drop_unlabelled: bool = False  # drop instances with no keypoints instead of keeping them
    keep_empty: bool = False  # keep images with no annotations as negatives
    control: str | None = None  # Label Studio: the keypoint control (from_name) to import
    predicted: bool = False  # SLEAP: also import predicted instances no user instance replaced


@dataclass
class ImportReport:
    format: str
    source: str
    instances_read: int = 0
    instances_written: int = 0
    images_read: int = 0
    images_written: int = 0
    repairs: Counter = field(default_factory=Counter)  # what was repaired -> count
    repair_examples: dict[str, list] = field(default_factory=dict)  # what -> first few ids/locations
    skipped: Counter = field(default_factory=Counter)  # why -> count
    skip_examples: dict[str, list] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def repair(self, what: str, example: object = None, n: int = 1) -> None:
        self.repairs[what] += n
        if example is not None:
            ex = self.repair_examples.setdefault(what, [])
            if len(ex) < 10:
                ex.append(example)

    def skip(self, why: str, example: object = None, n: int = 1) -> None:
        self.skipped[why] += n
        if example is not None:
            ex = self.skip_examples.setdefault(why, [])
            if len(ex) < 10:
                ex.append(example)

    def to_dict(self) -> dict:
        return {
            "format": self.format, "source": self.source,
            "instances_read": self.instances_read, "instances_written": self.instances_written,
            "images_read": self.images_read, "images_written": self.images_written,
            "repairs": dict(self.repairs), "repair_examples": self.repair_examples,
            "skipped": dict(self.skipped), "skip_examples": self.skip_examples, "warnings": self.warnings,
        }


@dataclass
class ImportResult:
    dataset: Dataset
    report: ImportReport
    # images the export holds itself or in videos (SLEAP without --images): the dataset's file
    # names are theirs, and the command writes them beside its output (len(), write(folder, progress))
    frames: Any = None
