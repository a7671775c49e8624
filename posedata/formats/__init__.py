"""One module per external annotation format, each a reader into the same `posedata.coco.Dataset`.

A format module defines:
    NAME: str                      the name used on the command line (`posedata import NAME ...`)
    def detect(path: Path) -> bool: True when the file or folder looks like this format (content, not name)
    def read(path: Path, skeleton: Skeleton, options: ImportOptions) -> ImportResult
and is listed in FORMATS below.
"""
from __future__ import annotations

from .base import ImportOptions, ImportReport, ImportResult  # noqa: F401

# name -> module path; imported lazily so the CLI stays fast
FORMATS: dict[str, str] = {}
