"""The skeleton file: one YAML file that every posedata step derives its tables from.

Channel layout (the reference's, generalised): heatmap channel i is keypoint i, background last
(K + 1 channels); PAF channels 2i and 2i + 1 are the x and y components of limb i.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import InputError, SkeletonError
from .findings import Finding
from .io import load_yaml
from .sides import guess_flip_pairs, name_side, unpaired_sided

DERIVED_RULES = ("mean_of",)


def normalize_name(name: str) -> str:
    """Case and separator tolerant key: 'Left Shoulder' == 'left_shoulder' == 'left-shoulder'."""
    return re.sub(r"[\s_\-.]+", "_", str(name).strip().lower()).strip("_")


@dataclass(frozen=True)
class Derived:
    """A keypoint computed from others; visibility follows the reference's neck rule:
    absent if any source is absent, visible if all are visible, else occluded."""

    name: str
    mean_of: tuple[str, ...]


@dataclass(frozen=True)
class Skeleton:
    name: str
    keypoints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]  # keypoint indices (a, b): PAF points from a to b
    root: int
    flip: tuple[int, ...]  # flip[i] = index keypoint i becomes under a horizontal flip
    sigmas: tuple[float, ...]
    derived: tuple[Derived, ...] = ()
    source_keypoints: tuple[str, ...] | None = None  # the dataset's keypoint order, if different
    source_names: dict[str, str] = field(default_factory=dict)  # skeleton name -> dataset name
    colors: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    forced_redundant: frozenset[int] = frozenset()  # limbs the file lists under `redundant`
    file: str | None = None
    # per keypoint 'left' / 'right' / 'centre' as the file's `flip` entries state it ([left, right]);
    # empty when the skeleton was built without that information (names then decide)
    sides: tuple[str, ...] = ()
    flip_augment: bool = True  # False: training and previews never flip (chiral objects, fixed rigs)

    # ---------------------------------------------------------------- sizes
    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    @property
    def num_heatmaps(self) -> int:
        return len(self.keypoints) + 1

    @property
    def num_pafs(self) -> int:
        return 2 * len(self.limbs)

    def index(self, name: str) -> int:
        return self.keypoints.index(name)

    def limb_names(self, i: int) -> tuple[str, str]:
        a, b = self.limbs[i]
        return self.keypoints[a], self.keypoints[b]

    @property
    def limbs_array(self) -> np.ndarray:
        return np.asarray(self.limbs, dtype=np.int64).reshape(-1, 2)

    @property
    def flip_array(self) -> np.ndarray:
        return np.asarray(self.flip, dtype=np.int64)

    @property
    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=np.float64)

    @property
    def derived_indices(self) -> tuple[int, ...]:
        return tuple(self.index(d.name) for d in self.derived)

    # ------------------------------------------------------------ source data
    @property
    def coco_keypoints(self) -> tuple[str, ...]:
        """The keypoint list a COCO file for this skeleton carries: the source order if given,
        else the skeleton's own keypoints without the derived ones."""
        if self.source_keypoints is not None:
            return self.source_keypoints
        derived = {d.name for d in self.derived}
        return tuple(self.source_names.get(k, k) for k in self.keypoints if k not in derived)

    def source_index(self, dataset_names: list[str] | tuple[str, ...]) -> np.ndarray:
        """For each skeleton keypoint, its index in a dataset's keypoint list (-1 for derived).

        Names match case and separator tolerantly, never by position. Raises SkeletonError
        naming every skeleton keypoint the dataset lacks.
        """
        lookup: dict[str, int] = {}
        for i, n in enumerate(dataset_names):
            lookup.setdefault(normalize_name(n), i)
        derived = {d.name for d in self.derived}
        out = np.full(len(self.keypoints), -1, dtype=np.int64)
        missing = []
        for i, k in enumerate(self.keypoints):
            if k in derived:
                continue
            j = lookup.get(normalize_name(self.source_names.get(k, k)))
            if j is None:
                missing.append(self.source_names.get(k, k))
            else:
                out[i] = j
        if missing:
            raise SkeletonError(
                f"dataset keypoints {list(dataset_names)} lack skeleton keypoint(s) {missing}",
                file=self.file,
            )
        return out

    # --------------------------------------------------------------- graph
    def _bfs(self) -> tuple[tuple[int, ...], tuple[bool, ...]]:
        """Breadth-first walk from the root over the limbs (each node's limbs in file order).
        A limb that reaches an already-placed keypoint closes a cycle and is redundant; limbs the
        file lists under `redundant` are set aside first (how the reference's ear-shoulder limbs
        stay fill-only although BFS would reach the ears through the shoulders)."""
        red = [li in self.forced_redundant for li in range(len(self.limbs))]
        adj: dict[int, list[int]] = {i: [] for i in range(len(self.keypoints))}
        for li, (a, b) in enumerate(self.limbs):
            if not red[li]:
                adj[a].append(li)
                adj[b].append(li)
        seen = {self.root}
        done: set[int] = set()
        order: list[int] = []
        queue = deque([self.root])
        while queue:
            k = queue.popleft()
            for li in adj[k]:
                if li in done:
                    continue
                done.add(li)
                a, b = self.limbs[li]
                other = b if a == k else a
                if other in seen:
                    red[li] = True
                else:
                    seen.add(other)
                    order.append(li)
                    queue.append(other)
        order += [li for li in range(len(self.limbs)) if red[li]]
        return tuple(order), tuple(red)

    @property
    def redundant(self) -> tuple[bool, ...]:
        """Per limb: fill-only in grouping (closes a cycle, or listed under `redundant`)."""
        return self._bfs()[1]

    @property
    def grouping_order(self) -> tuple[int, ...]:
        """Limb indices in the order grouping walks them: the tree limbs breadth-first from the
        root, so every limb meets an already-placed end first; then the redundant limbs in file
        order. Computed, never hand-ordered."""
        return self._bfs()[0]

    @property
    def grouping_steps(self) -> tuple[tuple[int, int, int], ...]:
        """(limb, known_end, new_end) in grouping order; for redundant limbs the ends are as listed."""
        steps = []
        placed = {self.root}
        red = self.redundant
        for li in self.grouping_order:
            a, b = self.limbs[li]
            if not red[li] and b in placed and a not in placed:
                steps.append((li, b, a))
                placed.add(a)
            else:
                steps.append((li, a, b))
                placed.update((a, b))
        return tuple(steps)

    def reachable(self) -> set[int]:
        adj: dict[int, set[int]] = {i: set() for i in range(len(self.keypoints))}
        for a, b in self.limbs:
            adj[a].add(b)
            adj[b].add(a)
        seen = {self.root}
        stack = [self.root]
        while stack:
            k = stack.pop()
            for o in adj[k] - seen:
                seen.add(o)
                stack.append(o)
        return seen

    # ---------------------------------------------------------------- flip
    @property
    def limb_flip(self) -> tuple[tuple[int, bool], ...]:
        """For each limb i: (j, reversed) where limb j is the mirror of limb i under the flip map
        and reversed says it is listed b->a. (-1, False) when the mirror is not a limb."""
        lookup = {(a, b): i for i, (a, b) in enumerate(self.limbs)}
        out = []
        for a, b in self.limbs:
            fa, fb = self.flip[a], self.flip[b]
            if (fa, fb) in lookup:
                out.append((lookup[(fa, fb)], False))
            elif (fb, fa) in lookup:
                out.append((lookup[(fb, fa)], True))
            else:
                out.append((-1, False))
        return tuple(out)

    def flip_pairs(self) -> list[tuple[str, str]]:
        """The flip map's pairs as (left, right), in keypoint order of their first member."""
        out = []
        for i, j in enumerate(self.flip):
            if i < j:
                out.append((self.keypoints[j], self.keypoints[i]) if self.side(i) == "right"
                           else (self.keypoints[i], self.keypoints[j]))
        return out

    def side(self, i: int) -> str:
        """'left', 'right' or 'centre'. The file's `[left, right]` order in `flip` decides; the
        keypoint's name (then its order) only for a skeleton built without that order."""
        if self.flip[i] == i:
            return "centre"
        if self.sides:
            return self.sides[i]
        s = name_side(self.keypoints[i])
        if s and name_side(self.keypoints[self.flip[i]]) != s:
            return s
        return "left" if i < self.flip[i] else "right"

    # ---------------------------------------------------------- fingerprint
    @property
    def fingerprint(self) -> str:
        """Stable hash of what the network's channels mean: names, order, limbs, flip map, derived."""
        canon = {
            "keypoints": list(self.keypoints),
            "limbs": [list(self.limb_names(i)) for i in range(len(self.limbs))],
            # index order, not side order: which member is "left" does not change a channel's meaning
            "flip": sorted([[self.keypoints[i], self.keypoints[j]] for i, j in enumerate(self.flip) if i < j]),
            "derived": [[d.name, list(d.mean_of)] for d in self.derived],
        }
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ------------------------------------------------------------ serialise
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "limbs": [list(self.limb_names(i)) for i in range(len(self.limbs))],
            "root": self.keypoints[self.root],
            "flip": [list(p) for p in self.flip_pairs()],
            "sigmas": [float(s) for s in self.sigmas],
        }
        if not self.flip_augment:
            d["flip_augment"] = False
        if self.forced_redundant:
            d["redundant"] = [list(self.limb_names(i)) for i in sorted(self.forced_redundant)]
        if self.derived:
            d["derived"] = {dv.name: {"mean_of": list(dv.mean_of)} for dv in self.derived}
        if self.source_keypoints is not None or self.source_names:
            src: dict[str, Any] = {}
            if self.source_keypoints is not None:
                src["keypoints"] = list(self.source_keypoints)
            if self.source_names:
                src["names"] = dict(self.source_names)
            d["source"] = src
        if self.colors:
            d["colors"] = {k: list(v) for k, v in self.colors.items()}
        return d

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())


# ------------------------------------------------------------------ names
# sided names and flip-pair guessing live in posedata.sides; re-exported for the importers
__all__ = ["guess_flip_pairs", "name_side"]


def dump_yaml(d: dict[str, Any]) -> str:
    """YAML with lists of names in flow style, one limb or pair a line."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper: yaml.SafeDumper, data: list) -> Any:
        flow = all(not isinstance(x, (list, dict)) for x in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    _Dumper.add_representer(list, _list)
    return yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


# ------------------------------------------------------------------- load
def _problem(findings: list[Finding], file: str | None, where: str, msg: str, code: str) -> None:
    findings.append(Finding(code, "error", msg, where=where, file=file))


# Far above any pose skeleton (COCO-WholeBody has 133 keypoints): every keypoint is a heatmap
# channel and every limb two PAF channels, so a skeleton file cannot ask for a network (or a
# check) of unbounded size.
MAX_KEYPOINTS = 1000
MAX_LIMBS = 2000


def parse(data: Any, file: str | None = None) -> tuple[Skeleton | None, list[Finding]]:
    """Build a Skeleton from parsed YAML. Returns (skeleton or None, findings): every structural
    problem is a located error finding; semantic checks are in check()."""
    f: list[Finding] = []
    if not isinstance(data, dict):
        _problem(f, file, "(top level)", f"expected a mapping with keys name, keypoints, limbs, root, flip, sigmas; got {type(data).__name__}", "S001")
        return None, f
    known = {"name", "keypoints", "limbs", "root", "flip", "flip_augment", "sigmas", "redundant", "derived", "source",
             "colors", "description"}
    for k in data:
        if k not in known:
            f.append(Finding("S002", "warning", f"unknown key {k!r} ignored (known: {sorted(known)})", where=str(k), file=file))
    for k in ("keypoints", "limbs", "root"):
        if k not in data:
            _problem(f, file, k, "required key missing", "S001")
    if any(x.severity == "error" for x in f):
        return None, f
    name = str(data.get("name", Path(file).stem if file else "skeleton"))

    kps = data["keypoints"]
    if not isinstance(kps, list) or not kps or not all(isinstance(k, str) and k.strip() for k in kps):
        _problem(f, file, "keypoints", "expected a non-empty list of keypoint names (strings)", "S001")
        return None, f
    if len(kps) > MAX_KEYPOINTS:
        _problem(f, file, "keypoints", f"{len(kps)} keypoints; posedata reads skeletons of at most {MAX_KEYPOINTS} "
                 "(each is a heatmap channel)", "S001")
        return None, f
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
        _problem(f, file, f"keypoints[{i}]", msg, "S010")
    index = {k: i for i, k in reversed(list(enumerate(kps)))}

    def name_ref(v: Any, where: str) -> int | None:
        if not isinstance(v, str):
            _problem(f, file, where, f"expected a keypoint name, got {v!r}", "S001")
            return None
        if v.strip() not in index:
            _problem(f, file, where, f"unknown keypoint {v!r}", "S011")
            return None
        return index[v.strip()]

    limbs: list[tuple[int, int]] = []
    raw_limbs = data["limbs"]
    if not isinstance(raw_limbs, list):
        _problem(f, file, "limbs", "expected a list of [from, to] keypoint name pairs", "S001")
        raw_limbs = []
    if len(raw_limbs) > MAX_LIMBS:
        _problem(f, file, "limbs", f"{len(raw_limbs)} limbs; posedata reads skeletons of at most {MAX_LIMBS} "
                 "(each is two PAF channels)", "S001")
        return None, f
    seen_limbs: dict[frozenset, int] = {}
    for i, pair in enumerate(raw_limbs):
        if not isinstance(pair, list) or len(pair) != 2:
            _problem(f, file, f"limbs[{i}]", f"expected a [from, to] pair of keypoint names, got {pair!r}", "S001")
            continue
        a, b = name_ref(pair[0], f"limbs[{i}][0]"), name_ref(pair[1], f"limbs[{i}][1]")
        if a is None or b is None:
            continue
        if a == b:
            _problem(f, file, f"limbs[{i}]", f"limb joins {kps[a]!r} to itself", "S012")
            continue
        key = frozenset((a, b))
        if key in seen_limbs:
            _problem(f, file, f"limbs[{i}]", f"duplicate limb {kps[a]}-{kps[b]} (first at limbs[{seen_limbs[key]}])", "S013")
            continue
        seen_limbs[key] = i
        limbs.append((a, b))

    root = name_ref(data["root"], "root")

    forced: set[int] = set()
    raw_red = data.get("redundant") or []
    if not isinstance(raw_red, list):
        _problem(f, file, "redundant", "expected a list of [from, to] limbs", "S001")
        raw_red = []
    limb_lookup = {frozenset(lb): i for i, lb in enumerate(limbs)}
    for i, pair in enumerate(raw_red):
        where = f"redundant[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            _problem(f, file, where, f"expected a [from, to] limb, got {pair!r}", "S001")
            continue
        a, b = name_ref(pair[0], f"{where}[0]"), name_ref(pair[1], f"{where}[1]")
        if a is None or b is None:
            continue
        li = limb_lookup.get(frozenset((a, b)))
        if li is None:
            _problem(f, file, where, f"{kps[a]}-{kps[b]} is not one of the limbs", "S011")
        else:
            forced.add(li)

    flip = list(range(len(kps)))
    sides = ["centre"] * len(kps)
    raw_flip = data.get("flip", []) or []
    paired: dict[int, str] = {}
    if not isinstance(raw_flip, list):
        _problem(f, file, "flip", "expected a list of [left, right] keypoint name pairs", "S001")
        raw_flip = []
    for i, pair in enumerate(raw_flip):
        where = f"flip[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            _problem(f, file, where, f"expected a [left, right] pair of keypoint names, got {pair!r}", "S001")
            continue
        a, b = name_ref(pair[0], f"{where}[0]"), name_ref(pair[1], f"{where}[1]")
        if a is None or b is None:
            continue
        if a == b:
            _problem(f, file, where, f"flip pair maps {kps[a]!r} to itself; unlisted keypoints already map to themselves", "S014")
            continue
        for k in (a, b):
            if k in paired:
                _problem(f, file, where, f"keypoint {kps[k]!r} is paired twice (also in {paired[k]}); the flip map must be an involution", "S014")
        if a in paired or b in paired:
            continue
        paired[a] = paired[b] = where
        flip[a], flip[b] = b, a
        sides[a], sides[b] = "left", "right"

    flip_augment = data.get("flip_augment", True)
    if not isinstance(flip_augment, bool):
        _problem(f, file, "flip_augment", f"expected true or false, got {flip_augment!r}", "S001")
        flip_augment = True

    raw_sig = data.get("sigmas")
    sigmas: list[float] = []
    if raw_sig is None:
        _problem(f, file, "sigmas", f"required: one OKS sigma per keypoint ({len(kps)} values)", "S015")
    elif not isinstance(raw_sig, list) or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in raw_sig):
        _problem(f, file, "sigmas", "expected a list of numbers", "S015")
    else:
        sigmas = [float(s) for s in raw_sig]
        if len(sigmas) != len(kps):
            _problem(f, file, "sigmas", f"expected {len(kps)} sigmas (one per keypoint), got {len(sigmas)}", "S015")
        for i, s in enumerate(sigmas):
            if not np.isfinite(s) or s <= 0:
                _problem(f, file, f"sigmas[{i}]", f"sigma must be a positive finite number, got {s}", "S015")

    derived: list[Derived] = []
    raw_der = data.get("derived") or {}
    if not isinstance(raw_der, dict):
        _problem(f, file, "derived", "expected a mapping keypoint -> {mean_of: [names]}", "S001")
        raw_der = {}
    for dname, rule in raw_der.items():
        where = f"derived.{dname}"
        if dname not in index:
            _problem(f, file, where, f"derived keypoint {dname!r} is not in keypoints", "S011")
            continue
        if not isinstance(rule, dict) or set(rule) != {"mean_of"} or not isinstance(rule["mean_of"], list) or not rule["mean_of"]:
            _problem(f, file, where, f"expected {{mean_of: [keypoint names]}}, got {rule!r}", "S001")
            continue
        srcs = [name_ref(s, f"{where}.mean_of[{j}]") for j, s in enumerate(rule["mean_of"])]
        if any(s is None for s in srcs):
            continue
        if index[dname] in srcs or any(kps[s] in raw_der for s in srcs):
            _problem(f, file, where, "a derived keypoint must be the mean of non-derived keypoints", "S016")
            continue
        derived.append(Derived(dname, tuple(kps[s] for s in srcs)))  # type: ignore[index]

    source_keypoints = None
    source_names: dict[str, str] = {}
    raw_src = data.get("source") or {}
    if not isinstance(raw_src, dict):
        _problem(f, file, "source", "expected a mapping with optional keys keypoints, names", "S001")
        raw_src = {}
    if "keypoints" in raw_src:
        sk = raw_src["keypoints"]
        if not isinstance(sk, list) or not all(isinstance(s, str) for s in sk):
            _problem(f, file, "source.keypoints", "expected a list of the dataset's keypoint names", "S001")
        else:
            source_keypoints = tuple(sk)
    if "names" in raw_src:
        sn = raw_src["names"]
        if not isinstance(sn, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sn.items()):
            _problem(f, file, "source.names", "expected a mapping skeleton name -> dataset name", "S001")
        else:
            for k in sn:
                if k not in index:
                    _problem(f, file, f"source.names.{k}", f"unknown keypoint {k!r}", "S011")
            source_names = dict(sn)

    colors: dict[str, tuple[int, int, int]] = {}
    raw_col = data.get("colors") or {}
    if isinstance(raw_col, dict):
        for k, v in raw_col.items():
            if k not in index:
                _problem(f, file, f"colors.{k}", f"unknown keypoint {k!r}", "S011")
            elif not (isinstance(v, list) and len(v) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in v)):
                _problem(f, file, f"colors.{k}", f"expected [r, g, b] integers 0-255, got {v!r}", "S001")
            else:
                colors[k] = (v[0], v[1], v[2])
    else:
        _problem(f, file, "colors", "expected a mapping keypoint -> [r, g, b]", "S001")

    if any(x.severity == "error" for x in f) or root is None:
        return None, f
    sk = Skeleton(
        name=name, keypoints=tuple(kps), limbs=tuple(limbs), root=root, flip=tuple(flip),
        sigmas=tuple(sigmas), derived=tuple(derived), source_keypoints=source_keypoints,
        source_names=source_names, colors=colors, forced_redundant=frozenset(forced), file=file,
        sides=tuple(sides), flip_augment=flip_augment,
    )
    if source_keypoints is not None:
        try:
            sk.source_index(source_keypoints)
        except SkeletonError as e:
            _problem(f, file, "source.keypoints", e.message, "S017")
            return None, f
    return sk, f


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


def require_fingerprint(what: str, name: str, fingerprint: str | None, skeleton: Skeleton,
                        file: str | None = None, advice: str = "channel meanings differ") -> None:
    """The one check that something made for a skeleton (a label file, a run, a checkpoint, an ONNX
    file) meets the skeleton given: the same fingerprint, else InputError naming both. None
    (nothing recorded) passes."""
    if fingerprint is not None and fingerprint != skeleton.fingerprint:
        raise InputError(f"{what} was made for skeleton {name!r} (fingerprint {fingerprint}), not {skeleton.name!r} "
                         f"(fingerprint {skeleton.fingerprint}); {advice}", file=file)


def from_coco_category(cat: dict[str, Any], name: str | None = None, file: str | None = None,
                       where: str = "categories[0]", edges: bool = True) -> tuple[dict[str, Any], list[str]]:
    """A starting skeleton dict from a COCO keypoint category, for the user to review, and notes on
    how its edges were read. edges False leaves the category's `skeleton` out (no limbs).
    Raises SkeletonError located at the edge when the edges do not fit the keypoint list."""
    kps = [str(k) for k in cat.get("keypoints", [])]
    limbs: list[list[str]] = []
    notes: list[str] = []
    if edges:
        limbs, notes = coco_edges(kps, cat.get("skeleton"), file, f"{where}.skeleton")
    else:
        notes.append("the category's skeleton edges were left out (--ignore-edges): add limbs that connect every "
                     "keypoint to the root")
    return {
        "name": name or str(cat.get("name", "skeleton")),
        "keypoints": kps,
        "limbs": limbs,
        "root": guess_root(kps, limbs),
        "flip": [list(p) for p in guess_flip_pairs(kps)],
        "sigmas": [0.05] * len(kps),
    }, notes


def coco_edges(kps: list[str], edges: Any, file: str | None, where: str) -> tuple[list[list[str]], list[str]]:
    """A COCO category's `skeleton` as limbs of keypoint names, and notes. COCO edges are 1-based;
    a list that uses index 0 and never K is 0-based (several public exports write it so) and is read
    as such, with a note. Edges that fit neither (an index above K, or both 0 and K: copied from
    another keypoint list) are refused, never shifted or dropped. Repeated edges and edges from a
    keypoint to itself carry no limb and are noted."""
    k = len(kps)
    if edges is None:
        return [], ["the category has no skeleton edges: add limbs that connect every keypoint to the root"]
    if not isinstance(edges, list):
        raise SkeletonError(f"expected a list of [a, b] keypoint index pairs, got {type(edges).__name__}; "
                            "correct it, or pass --ignore-edges", file=file, where=where)
    for j, e in enumerate(edges):
        if not (isinstance(e, list) and len(e) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in e)):
            raise SkeletonError(f"expected an [a, b] pair of keypoint indices, got {e!r}; correct it, or pass "
                                "--ignore-edges", file=file, where=f"{where}[{j}]")
    flat = [x for e in edges for x in e]
    if not flat:
        return [], ["the category's skeleton is empty: add limbs that connect every keypoint to the root"]
    lo, hi = min(flat), max(flat)
    notes = []
    if lo >= 1 and hi <= k:
        base = 1
    elif lo == 0 and hi <= k - 1:
        base = 0
        notes.append(f"the category's skeleton edges are 0-based (index 0 is used, {k} never): read as 0-based, "
                     f"so edge {edges[0]} is {kps[edges[0][0]]}-{kps[edges[0][1]]}")
    else:
        out = [(j, x) for j, e in enumerate(edges) for x in e if x < 0 or x > k]
        if out:
            bad, x = out[0]
            why = f"index {x} is {'negative' if x < 0 else f'beyond the {k} keypoints'}"
        else:
            bad = next(j for j, e in enumerate(edges) if k in e)
            why = f"the edges use both 0 and {k}, so they are neither 1-based nor 0-based"
        raise SkeletonError(f"the category's skeleton edges do not fit its {k} keypoints: {why} (edge {edges[bad]}); "
                            "they were probably written for another keypoint list. Correct them, or pass "
                            "--ignore-edges and write the limbs yourself", file=file, where=f"{where}[{bad}]")
    limbs: list[list[str]] = []
    for j, (a, b) in enumerate(edges):
        pair = [kps[a - base], kps[b - base]]
        if a == b:
            notes.append(f"{where}[{j}] joins {pair[0]!r} to itself: no limb")
        elif pair in limbs or pair[::-1] in limbs:
            notes.append(f"{where}[{j}] repeats the limb {pair[0]}-{pair[1]}")
        else:
            limbs.append(pair)
    return limbs, notes


def orient_limbs(d: dict[str, Any]) -> dict[str, Any]:
    """d with every limb listed [known end, new end] in grouping order (the root outwards).

    posedata groups a limb in either direction, but the reference's own group_keypoints scores a
    pair along second - first, so a skeleton made by `init` (whose edges come in the dataset's
    order) is written the way both accept; S024 then stays quiet. A dict that does not parse is
    returned as it is, for the checks to report."""
    try:
        sk = from_dict(d)
    except SkeletonError:
        return d
    limbs = [list(x) for x in d["limbs"]]
    for li, known, new in sk.grouping_steps:
        if sk.limbs[li] != (known, new):
            limbs[li] = [sk.keypoints[known], sk.keypoints[new]]
    return {**d, "limbs": limbs}


def guess_root(kps: list[str], limbs: list[list[str]]) -> str:
    """The best-connected keypoint; ties go to the most central one (smallest eccentricity)."""
    adj: dict[str, set[str]] = {k: set() for k in kps}
    for a, b in limbs:
        adj[a].add(b)
        adj[b].add(a)

    def ecc(k: str) -> int:
        dist = {k: 0}
        q = deque([k])
        while q:
            x = q.popleft()
            for y in adj[x]:
                if y not in dist:
                    dist[y] = dist[x] + 1
                    q.append(y)
        return max(dist.values()) if len(dist) == len(kps) else 10**6

    return min(kps, key=lambda k: (-len(adj[k]), ecc(k), kps.index(k))) if kps else ""


# inside the package, so a wheel install resolves template names too (package data in pyproject.toml)
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


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
