"""The skeleton as data: the tables every posedata step derives from it (channels, grouping order,
flip map, fingerprint) and its serialisation back to YAML.

Channel layout (the reference's, generalised): heatmap channel i is keypoint i, background last
(K + 1 channels); PAF channels 2i and 2i + 1 are the x and y components of limb i.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from ..errors import InputError, SkeletonError
from ..sides import name_side

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


def dump_yaml(d: dict[str, Any]) -> str:
    """YAML with lists of names in flow style, one limb or pair a line."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper: yaml.SafeDumper, data: list) -> Any:
        flow = all(not isinstance(x, (list, dict)) for x in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    _Dumper.add_representer(list, _list)
    return yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def require_fingerprint(what: str, name: str, fingerprint: str | None, skeleton: Skeleton,
                        file: str | None = None, advice: str = "channel meanings differ") -> None:
    """The one check that something made for a skeleton (a label file, a run, a checkpoint, an ONNX
    file) meets the skeleton given: the same fingerprint, else InputError naming both. None
    (nothing recorded) passes."""
    if fingerprint is not None and fingerprint != skeleton.fingerprint:
        raise InputError(f"{what} was made for skeleton {name!r} (fingerprint {fingerprint}), not {skeleton.name!r} "
                         f"(fingerprint {skeleton.fingerprint}); {advice}", file=file)
