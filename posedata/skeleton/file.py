"""Reading a skeleton file: every structural problem a located, coded finding (parse), the semantic
checks of a parsed skeleton (check), and the ways a command names a skeleton (a path or a bundled
template)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SkeletonError
from ..findings import Finding
from ..io import load_yaml
from ..sides import guess_flip_pairs, name_side, unpaired_sided
from .model import Derived, Skeleton, normalize_name

# Far above any pose skeleton (COCO-WholeBody has 133 keypoints): every keypoint is a heatmap
# channel and every limb two PAF channels, so a skeleton file cannot ask for a network (or a
# check) of unbounded size.
MAX_KEYPOINTS = 1000
MAX_LIMBS = 2000
KNOWN_KEYS = {"name", "keypoints", "limbs", "root", "flip", "flip_augment", "sigmas", "redundant", "derived", "source",
              "colors", "description"}


class _Reader:
    """One parse: the findings so far, and the keypoint names entries refer to."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.f: list[Finding] = []
        self.kps: list[str] = []
        self.index: dict[str, int] = {}

    def problem(self, where: str, msg: str, code: str) -> None:
        self.f.append(Finding(code, "error", msg, where=where, file=self.file))

    @property
    def failed(self) -> bool:
        return any(x.severity == "error" for x in self.f)

    def name_ref(self, v: Any, where: str) -> int | None:
        if not isinstance(v, str):
            self.problem(where, f"expected a keypoint name, got {v!r}", "S001")
            return None
        if v.strip() not in self.index:
            self.problem(where, f"unknown keypoint {v!r}", "S011")
            return None
        return self.index[v.strip()]

    def pair(self, pair: Any, where: str, expected: str) -> tuple[int, int] | None:
        """A [a, b] entry of keypoint names as indices; None (reported) when it is not one."""
        if not isinstance(pair, list) or len(pair) != 2:
            self.problem(where, f"expected {expected}, got {pair!r}", "S001")
            return None
        a, b = self.name_ref(pair[0], f"{where}[0]"), self.name_ref(pair[1], f"{where}[1]")
        if a is None or b is None:
            return None
        return a, b

    def listed(self, data: dict[str, Any], key: str, msg: str, default: Any) -> Any:
        """data[key] if it is a list (absent: the default), else reported and the default."""
        raw = data.get(key) or default
        if not isinstance(raw, type(default)):
            self.problem(key, msg, "S001")
            return default
        return raw


def parse(data: Any, file: str | None = None) -> tuple[Skeleton | None, list[Finding]]:
    """Build a Skeleton from parsed YAML. Returns (skeleton or None, findings): every structural
    problem is a located error finding; semantic checks are in check()."""
    r = _Reader(file)
    if not isinstance(data, dict):
        r.problem("(top level)", "expected a mapping with keys name, keypoints, limbs, root, flip, sigmas; "
                  f"got {type(data).__name__}", "S001")
        return None, r.f
    for k in data:
        if k not in KNOWN_KEYS:
            r.f.append(Finding("S002", "warning", f"unknown key {k!r} ignored (known: {sorted(KNOWN_KEYS)})",
                               where=str(k), file=file))
    for k in ("keypoints", "limbs", "root"):
        if k not in data:
            r.problem(k, "required key missing", "S001")
    if r.failed or not _keypoints(r, data["keypoints"]):
        return None, r.f
    limbs = _limbs(r, data["limbs"])
    if limbs is None:
        return None, r.f
    root = r.name_ref(data["root"], "root")
    forced = _redundant(r, data, limbs)
    flip, sides = _flip(r, data)
    flip_augment = data.get("flip_augment", True)
    if not isinstance(flip_augment, bool):
        r.problem("flip_augment", f"expected true or false, got {flip_augment!r}", "S001")
        flip_augment = True
    sigmas = _sigmas(r, data.get("sigmas"))
    derived = _derived(r, data)
    source_keypoints, source_names = _source(r, data)
    colors = _colors(r, data.get("colors") or {})
    if r.failed or root is None:
        return None, r.f
    sk = Skeleton(
        name=str(data.get("name", Path(file).stem if file else "skeleton")), keypoints=tuple(r.kps),
        limbs=tuple(limbs), root=root, flip=tuple(flip), sigmas=tuple(sigmas), derived=tuple(derived),
        source_keypoints=source_keypoints, source_names=source_names, colors=colors,
        forced_redundant=frozenset(forced), file=file, sides=tuple(sides), flip_augment=flip_augment,
    )
    if source_keypoints is not None:
        try:
            sk.source_index(source_keypoints)
        except SkeletonError as e:
            r.problem("source.keypoints", e.message, "S017")
            return None, r.f
    return sk, r.f


def _keypoints(r: _Reader, kps: Any) -> bool:
    """Sets r.kps and r.index; False when the list cannot be read at all."""
    if not isinstance(kps, list) or not kps or not all(isinstance(k, str) and k.strip() for k in kps):
        r.problem("keypoints", "expected a non-empty list of keypoint names (strings)", "S001")
        return False
    if len(kps) > MAX_KEYPOINTS:
        r.problem("keypoints", f"{len(kps)} keypoints; posedata reads skeletons of at most {MAX_KEYPOINTS} "
                  "(each is a heatmap channel)", "S001")
        return False
    kps = [k.strip() for k in kps]
    seen: dict[str, int] = {}
    for i, k in enumerate(kps):
        key = normalize_name(k)  # names match the data case and separator tolerantly: alike names are one
        first = seen.setdefault(key, i)
        if first == i:
            continue
        if kps[first] == k:
            msg = f"duplicate keypoint name {k!r} (first at keypoints[{first}])"
        else:
            msg = (f"keypoint name {k!r} is the same as {kps[first]!r} (keypoints[{first}]) once case and separators "
                   "are ignored, as posedata matches names to the data; rename one")
        r.problem(f"keypoints[{i}]", msg, "S010")
    r.kps = kps
    r.index = {k: i for i, k in reversed(list(enumerate(kps)))}
    return True


def _limbs(r: _Reader, raw_limbs: Any) -> list[tuple[int, int]] | None:
    """The limbs as index pairs; None when there are too many to read."""
    if not isinstance(raw_limbs, list):
        r.problem("limbs", "expected a list of [from, to] keypoint name pairs", "S001")
        raw_limbs = []
    if len(raw_limbs) > MAX_LIMBS:
        r.problem("limbs", f"{len(raw_limbs)} limbs; posedata reads skeletons of at most {MAX_LIMBS} "
                  "(each is two PAF channels)", "S001")
        return None
    limbs: list[tuple[int, int]] = []
    seen_limbs: dict[frozenset, int] = {}
    for i, pair in enumerate(raw_limbs):
        ab = r.pair(pair, f"limbs[{i}]", "a [from, to] pair of keypoint names")
        if ab is None:
            continue
        a, b = ab
        if a == b:
            r.problem(f"limbs[{i}]", f"limb joins {r.kps[a]!r} to itself", "S012")
            continue
        key = frozenset((a, b))
        if key in seen_limbs:
            r.problem(f"limbs[{i}]", f"duplicate limb {r.kps[a]}-{r.kps[b]} (first at limbs[{seen_limbs[key]}])", "S013")
            continue
        seen_limbs[key] = i
        limbs.append((a, b))
    return limbs


def _redundant(r: _Reader, data: dict[str, Any], limbs: list[tuple[int, int]]) -> set[int]:
    forced: set[int] = set()
    limb_lookup = {frozenset(lb): i for i, lb in enumerate(limbs)}
    for i, pair in enumerate(r.listed(data, "redundant", "expected a list of [from, to] limbs", [])):
        where = f"redundant[{i}]"
        ab = r.pair(pair, where, "a [from, to] limb")
        if ab is None:
            continue
        li = limb_lookup.get(frozenset(ab))
        if li is None:
            r.problem(where, f"{r.kps[ab[0]]}-{r.kps[ab[1]]} is not one of the limbs", "S011")
        else:
            forced.add(li)
    return forced


def _flip(r: _Reader, data: dict[str, Any]) -> tuple[list[int], list[str]]:
    """The flip map and each keypoint's side as the `[left, right]` pairs state them."""
    kps = r.kps
    flip = list(range(len(kps)))
    sides = ["centre"] * len(kps)
    paired: dict[int, str] = {}
    for i, pair in enumerate(r.listed(data, "flip", "expected a list of [left, right] keypoint name pairs", [])):
        where = f"flip[{i}]"
        ab = r.pair(pair, where, "a [left, right] pair of keypoint names")
        if ab is None:
            continue
        a, b = ab
        if a == b:
            r.problem(where, f"flip pair maps {kps[a]!r} to itself; unlisted keypoints already map to themselves", "S014")
            continue
        for k in (a, b):
            if k in paired:
                r.problem(where, f"keypoint {kps[k]!r} is paired twice (also in {paired[k]}); the flip map must be "
                          "an involution", "S014")
        if a in paired or b in paired:
            continue
        paired[a] = paired[b] = where
        flip[a], flip[b] = b, a
        sides[a], sides[b] = "left", "right"
    return flip, sides


def _sigmas(r: _Reader, raw_sig: Any) -> list[float]:
    n = len(r.kps)
    if raw_sig is None:
        r.problem("sigmas", f"required: one OKS sigma per keypoint ({n} values)", "S015")
        return []
    if not isinstance(raw_sig, list) or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in raw_sig):
        r.problem("sigmas", "expected a list of numbers", "S015")
        return []
    sigmas = [float(s) for s in raw_sig]
    if len(sigmas) != n:
        r.problem("sigmas", f"expected {n} sigmas (one per keypoint), got {len(sigmas)}", "S015")
    for i, s in enumerate(sigmas):
        if not np.isfinite(s) or s <= 0:
            r.problem(f"sigmas[{i}]", f"sigma must be a positive finite number, got {s}", "S015")
    return sigmas


def _derived(r: _Reader, data: dict[str, Any]) -> list[Derived]:
    derived: list[Derived] = []
    raw_der = r.listed(data, "derived", "expected a mapping keypoint -> {mean_of: [names]}", {})
    for dname, rule in raw_der.items():
        where = f"derived.{dname}"
        if dname not in r.index:
            r.problem(where, f"derived keypoint {dname!r} is not in keypoints", "S011")
            continue
        if not isinstance(rule, dict) or set(rule) != {"mean_of"} or not isinstance(rule["mean_of"], list) or not rule["mean_of"]:
            r.problem(where, f"expected {{mean_of: [keypoint names]}}, got {rule!r}", "S001")
            continue
        srcs = [r.name_ref(s, f"{where}.mean_of[{j}]") for j, s in enumerate(rule["mean_of"])]
        if any(s is None for s in srcs):
            continue
        if r.index[dname] in srcs or any(r.kps[s] in raw_der for s in srcs):
            r.problem(where, "a derived keypoint must be the mean of non-derived keypoints", "S016")
            continue
        derived.append(Derived(dname, tuple(r.kps[s] for s in srcs)))  # type: ignore[index]
    return derived


def _source(r: _Reader, data: dict[str, Any]) -> tuple[tuple[str, ...] | None, dict[str, str]]:
    """The dataset's own keypoint order and names, when they differ from the skeleton's."""
    source_keypoints = None
    source_names: dict[str, str] = {}
    raw_src = r.listed(data, "source", "expected a mapping with optional keys keypoints, names", {})
    if "keypoints" in raw_src:
        sk = raw_src["keypoints"]
        if not isinstance(sk, list) or not all(isinstance(s, str) for s in sk):
            r.problem("source.keypoints", "expected a list of the dataset's keypoint names", "S001")
        else:
            source_keypoints = tuple(sk)
    if "names" in raw_src:
        sn = raw_src["names"]
        if not isinstance(sn, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sn.items()):
            r.problem("source.names", "expected a mapping skeleton name -> dataset name", "S001")
        else:
            for k in sn:
                if k not in r.index:
                    r.problem(f"source.names.{k}", f"unknown keypoint {k!r}", "S011")
            source_names = dict(sn)
    return source_keypoints, source_names


def _colors(r: _Reader, raw_col: Any) -> dict[str, tuple[int, int, int]]:
    colors: dict[str, tuple[int, int, int]] = {}
    if not isinstance(raw_col, dict):
        r.problem("colors", "expected a mapping keypoint -> [r, g, b]", "S001")
        return colors
    for k, v in raw_col.items():
        if k not in r.index:
            r.problem(f"colors.{k}", f"unknown keypoint {k!r}", "S011")
        elif not (isinstance(v, list) and len(v) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in v)):
            r.problem(f"colors.{k}", f"expected [r, g, b] integers 0-255, got {v!r}", "S001")
        else:
            colors[k] = (v[0], v[1], v[2])
    return colors


def check(sk: Skeleton) -> list[Finding]:
    """Semantic checks of a parsed skeleton: reachability, flip consistency, sided names."""
    f: list[Finding] = []
    file = sk.file
    reached = sk.reachable()
    unreachable = [sk.keypoints[i] for i in range(sk.num_keypoints) if i not in reached]
    if unreachable:
        f.append(Finding("S020", "error", f"keypoints not connected to root {sk.keypoints[sk.root]!r} by limbs: {unreachable}; grouping could never place them", where="limbs", file=file))
    for i, (j, _rev) in enumerate(sk.limb_flip):
        if j < 0:
            fa, fb = sk.flip[sk.limbs[i][0]], sk.flip[sk.limbs[i][1]]
            a, b = sk.limb_names(i)
            f.append(Finding("S021", "warning", f"limb {a}-{b} mirrors to {sk.keypoints[fa]}-{sk.keypoints[fb]}, which is not a limb; a flipped sample has no PAF channel for it", where=f"limbs[{i}]", file=file))
    for li, known, new in sk.grouping_steps:
        a, b = sk.limbs[li]
        if (known, new) != (a, b):
            # posedata groups either direction; only the reference's own group_keypoints cannot
            f.append(Finding("S024", "info", f"limb {sk.keypoints[a]}-{sk.keypoints[b]} is grouped from {sk.keypoints[known]!r}, against its PAF direction: fine for posedata; the reference's own code needs [{sk.keypoints[known]}, {sk.keypoints[new]}]", where=f"limbs[{li}]", file=file))
    flipped = set()
    for i in range(sk.num_keypoints):
        if sk.flip[i] != i:
            flipped.add(i)
    guessed = guess_flip_pairs(sk.keypoints)
    for a, b in guessed:
        ia, ib = sk.index(a), sk.index(b)
        if sk.flip[ia] != ib:
            f.append(Finding("S022", "warning", f"{a!r} and {b!r} look like a left/right pair but the flip map does not pair them", where="flip", file=file))
    for a, b in sk.flip_pairs():
        if name_side(a) == "right" and name_side(b) == "left":
            f.append(Finding("S025", "warning", f"flip pair [{a}, {b}] lists {a!r} first, so it is the left one "
                             f"(entries are [left, right]); its name says right. Write [{b}, {a}] if the name is right",
                             where="flip", file=file))
    for k in unpaired_sided(sk.keypoints, {sk.keypoints[i] for i in flipped}):
        f.append(Finding("S023", "warning", f"{k!r} looks sided ({name_side(k)}) but has no flip partner: pair it in "
                         "`flip`, or rename it if it is not a side", where=f"keypoints[{sk.index(k)}]", file=file))
    return f


def load(path: str | Path) -> Skeleton:
    """Load and check a skeleton file; raises SkeletonError on any error finding."""
    sk, findings = load_with_findings(path)
    errors = [x for x in findings if x.severity == "error"]
    if sk is None or errors:
        first = errors[0]
        more = f" (+{len(errors) - 1} more; run `posedata skeleton check`)" if len(errors) > 1 else ""
        raise SkeletonError(first.message + more, file=str(path), where=first.where)
    return sk


def load_with_findings(path: str | Path) -> tuple[Skeleton | None, list[Finding]]:
    data = load_yaml(path, SkeletonError)
    if data is None:
        raise SkeletonError("empty skeleton file", file=str(path))
    sk, findings = parse(data, file=str(path))
    if sk is not None:
        findings += check(sk)
    return sk, findings


def from_dict(data: dict[str, Any], file: str | None = None) -> Skeleton:
    sk, findings = parse(data, file=file)
    errors = [x for x in findings if x.severity == "error"]
    if sk is None or errors:
        raise SkeletonError(errors[0].message, file=file, where=errors[0].where)
    errors = [x for x in check(sk) if x.severity == "error"]
    if errors:
        raise SkeletonError(errors[0].message, file=file, where=errors[0].where)
    return sk


# inside the package, so a wheel install resolves template names too (package data in pyproject.toml)
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def template_path(name: str) -> Path:
    """Path of a bundled template by name ('coco17') or file name."""
    stem = name[:-5] if name.endswith(".yaml") else name
    p = TEMPLATES_DIR / f"{stem}.yaml"
    if not p.exists():
        avail = sorted(x.stem for x in TEMPLATES_DIR.glob("*.yaml"))
        raise SkeletonError(f"no template {name!r}; available: {avail}")
    return p


def resolve_path(spec: str | Path) -> Path:
    """The file a `--skeleton` value names: an existing path, else a bundled template name ('coco17')."""
    p = Path(spec)
    if p.exists() or p.suffix in (".yaml", ".yml") and "/" in str(spec):
        return p
    if not p.suffix and "/" not in str(spec):
        return template_path(str(spec))
    return p


def resolve(spec: str | Path) -> Skeleton:
    """Load a skeleton from a path, or a bundled template name such as 'coco17'."""
    return load(resolve_path(spec))
