"""The skeleton: one YAML file that every posedata step derives its tables from.

`model` is the Skeleton itself (channel tables, grouping order, flip map, fingerprint), `file`
reads and checks a skeleton file, `draft` makes a first skeleton from a dataset's definition. The
names below are the package's public API (`from posedata import skeleton as S; S.resolve("coco17")`).
"""
from __future__ import annotations

from .draft import coco_edges, from_coco_category, guess_root, orient_limbs
from .file import (
    MAX_KEYPOINTS,
    MAX_LIMBS,
    TEMPLATES_DIR,
    check,
    from_dict,
    load,
    load_with_findings,
    parse,
    resolve,
    resolve_path,
    template_path,
)
from .model import DERIVED_RULES, Derived, Skeleton, dump_yaml, normalize_name, require_fingerprint

__all__ = [
    "DERIVED_RULES", "MAX_KEYPOINTS", "MAX_LIMBS", "TEMPLATES_DIR", "Derived", "Skeleton", "check", "coco_edges",
    "dump_yaml", "from_coco_category", "from_dict", "guess_root", "load", "load_with_findings",
    "normalize_name", "orient_limbs", "parse", "require_fingerprint", "resolve", "resolve_path",
    "template_path",
]
