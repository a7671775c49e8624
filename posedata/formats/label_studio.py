"""Label Studio JSON export (a list of tasks) with `keypointlabels` results.

Each task: {"id", "data": {"image": URL}, "annotations": [{"result": [...], "was_cancelled"}],
"predictions": [...]}. A keypoint result: {"id", "type": "keypointlabels", "original_width",
"original_height", "image_rotation", "value": {"x", "y", "width", "keypointlabels": [name]},
optionally "parentID"}; x and y are percent of the original image size. Relations are results
{"type": "relation", "from_id", "to_id"}. Label Studio exports no keypoint list and no
occlusion flag, so every placed point is v=2 and names are checked against the skeleton.

Points become instances by their parent region (`parentID`, e.g. the animal's rectangle, which
then gives the bbox), else by relations (connected points form one instance), else by the one
rectangle that contains them. A point with none of these in a task that has rectangles (outside
every rectangle, or inside several) is ambiguous: it is reported and skipped, never merged into
another animal. Only in a task without rectangles do all its free points form one instance.

Each result names its control (`from_name`, e.g. "kp-mouse"); a project with several keypoint
controls is imported one control at a time (`--control NAME`). Keypoint names outside the
skeleton are skipped and counted (the import stops only when no name at all is known).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from ..errors import InputError
from ..images import IMAGE_EXTENSIONS
from .base import ImportOptions, ImportReport, ImportResult

NAME = "label-studio"


def detect(path: Path) -> bool:
    """A JSON list of tasks whose annotations hold keypointlabels results."""
    from .builder import peek_text, read_json

    if not path.is_file() or not peek_text(path, 64).lstrip().startswith("["):
        return False
    data = read_json(path)
    if not isinstance(data, list):
        return False
    for t in data[:50]:
        if not isinstance(t, dict) or not isinstance(t.get("data"), dict):
            return False
        for a in (t.get("annotations") or t.get("completions") or []):
            if isinstance(a, dict) and any(isinstance(r, dict) and r.get("type") == "keypointlabels"
                                           for r in (a.get("result") or [])):
                return True
    return False


def _image_ref(data: dict) -> tuple[str | None, str | None]:
    """(key, value) of the task's image URL: data["image"] / ["img"], else the first image-like string."""
    for k in ("image", "img"):
        if isinstance(data.get(k), str) and data[k]:
            return k, data[k]
    for k, v in data.items():
        if isinstance(v, str) and urlparse(v).path.lower().endswith(IMAGE_EXTENSIONS):
            return k, v
    return None, None


def image_names(url: str) -> tuple[str, list[str]]:
    """A file name and alternative paths to try under --images for a Label Studio image URL.

    /data/upload/3/8f2c1a9e-cat.jpg -> cat.jpg (uploads get an 8-hex prefix), then the stored name;
    /data/local-files/?d=photos/cat.jpg -> photos/cat.jpg; s3://bucket/a/cat.jpg -> a/cat.jpg ..."""
    u = urlparse(url)
    q = parse_qs(u.query)
    if q.get("d"):
        path = unquote(q["d"][0]).lstrip("/")
        return path, [path.rsplit("/", 1)[-1]]
    path = unquote(u.path).lstrip("/")
    base = path.rsplit("/", 1)[-1]
    head, _, rest = base.partition("-")
    if rest and len(head) == 8 and all(c in "0123456789abcdef" for c in head.lower()):
        return rest, [base, path]
    return base, [path]


def _finder(parent: dict[Any, Any]) -> Any:
    """Union-find lookup over region ids (relations join points and regions into one instance)."""

    def find(u: Any) -> Any:
        parent.setdefault(u, u)
        while parent[u] != u:
            parent[u] = parent.setdefault(parent[u], parent[u])
            u = parent[u]
        return u

    return find


def _rid(v: Any, file: str, where: str) -> Any:
    """A region id (string or integer) or None."""
    if v is None or (isinstance(v, (str, int)) and not isinstance(v, bool)):
        return v
    raise InputError(f"expected a region id (string), got {v!r}", file=file, where=where)


def _num(v: Any, file: str, where: str) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:  # a 40-digit integer: np.isfinite would raise TypeError on it
            f = float("inf")
        if np.isfinite(f):
            return f
    raise InputError(f"expected a finite number, got {str(v)[:40]}", file=file, where=where)


def keypoint_controls(data: Any) -> dict[str, int]:
    """Keypoint control name (a result's `from_name`) -> number of points placed with it."""
    out: dict[str, int] = {}
    for t in data if isinstance(data, list) else []:
        if not isinstance(t, dict):
            continue
        anns = t.get("annotations", t.get("completions"))
        for a in anns if isinstance(anns, list) else []:
            res = a.get("result") if isinstance(a, dict) else None
            for r in res if isinstance(res, list) else []:
                if isinstance(r, dict) and r.get("type") == "keypointlabels" and isinstance(r.get("from_name"), str):
                    out[r["from_name"]] = out.get(r["from_name"], 0) + 1
    return out


def _choose_control(data: Any, wanted: str | None, file: str) -> str | None:
    """The keypoint control to import: --control, else the only one (None: no names to choose by)."""
    controls = keypoint_controls(data)
    listing = ", ".join(f"{k!r} ({n} points)" for k, n in controls.items()) or "none"
    if wanted is not None:
        if wanted not in controls:
            raise InputError(f"no keypoint control {wanted!r}; keypoint controls (from_name): {listing}", file=file)
        return wanted
    if len(controls) > 1:
        raise InputError(f"{len(controls)} keypoint controls in this export: {listing}; each is its own set of "
                         "keypoints: import one with --control NAME", file=file)
    return None


def read(path: Path, skeleton: Any, options: ImportOptions) -> ImportResult:
    from .builder import read_json, unknown_names_error

    path = Path(path)
    file = str(path)
    report = ImportReport(format=NAME, source=file)
    data = read_json(path)
    if not isinstance(data, list):
        raise InputError(f"expected a JSON list of tasks (Label Studio 'JSON' export), got {type(data).__name__}",
                         file=file)
    tasks = _Tasks(file, skeleton, report, options)
    tasks.control = _choose_control(data, options.control, file)
    for ti, task in enumerate(data):
        tasks.read(ti, task)
    if tasks.unknown and not tasks.known_points:
        first = next(iter(tasks.unknown.values()))
        raise unknown_names_error(list(tasks.unknown), skeleton, file, first)
    report.images_read = len(data)
    return tasks.builder.build()


# a placed point: (where, region id, keypoint slot, x, y, parent region id)
Point = tuple[str, Any, int, float, float, Any]
Rect = tuple[str, tuple[float, float, float, float], list[str]]  # where, (x, y, w, h), labels


class _Tasks:
    """One import, task after task into the builder: the task's image, its first annotation's
    points and regions, the points grouped into instances."""

    def __init__(self, file: str, skeleton: Any, report: ImportReport, options: ImportOptions) -> None:
        from .builder import DatasetBuilder, keypoint_slots

        self.file, self.skeleton, self.report = file, skeleton, report
        self.slots = keypoint_slots(skeleton)
        self.cat_name = options.category or skeleton.name
        self.builder = DatasetBuilder(skeleton, options, report, file, category_id=1, category_name=self.cat_name)
        self.control: str | None = None
        self.unknown: dict[str, str] = {}
        self.known_points = 0
        self.seen_tasks: dict[Any, int] = {}

    def read(self, ti: int, task: Any) -> None:
        from .builder import RawImage

        tw = f"[{ti}]"
        tid, key, fname, cands = self._task_image(ti, task)
        chosen = self._chosen_annotation(task, tw, tid)
        results, width, height = self._results(chosen, tw)
        self.builder.add_image(RawImage(key=tid, file_name=fname, width=width, height=height, candidates=cands,
                                        where=f"{tw}.data.{key}"))
        if chosen is None:
            return
        points: list[Point] = []
        rects: dict[Any, Rect] = {}
        edges: list[tuple[Any, Any]] = []
        for rw, r in results:
            self._result(rw, r, tid, width, height, points, rects, edges)
        parent: dict[Any, Any] = {}
        find = _finder(parent)
        for u, v in edges:
            parent[find(u)] = find(v)
        groups, has_structure = self._groups(points, rects, edges, find, tid)
        self._instances(groups, rects, find, has_structure, tid, f"{tw}.annotations[{chosen[0]}]")

    def _task_image(self, ti: int, task: Any) -> tuple[Any, str | None, str, list[str]]:
        """(task id, data key, file name, candidate names) of a task, its id checked."""
        file, tw = self.file, f"[{ti}]"
        if not isinstance(task, dict):
            raise InputError("expected a task object", file=file, where=tw)
        tid = task.get("id", ti + 1)
        if isinstance(tid, bool) or not isinstance(tid, (int, str)):
            raise InputError(f"task id must be an integer, got {tid!r}", file=file, where=f"{tw}.id")
        if tid in self.seen_tasks:
            raise InputError(f"duplicate task id {tid!r} (first at [{self.seen_tasks[tid]}])", file=file,
                             where=f"{tw}.id")
        self.seen_tasks[tid] = ti
        tdata = task.get("data")
        if not isinstance(tdata, dict):
            minimal = any(isinstance(v, list) and v and isinstance(v[0], dict) and "keypointlabels" in v[0]
                          for v in task.values())
            raise InputError("expected a 'data' object with the image URL" + (
                "; this looks like Label Studio's JSON-MIN export, which drops the grouping of points into "
                "instances: export as 'JSON'" if minimal else ""), file=file, where=f"{tw}.data")
        key, url = _image_ref(tdata)
        if url is None:
            raise InputError("no image URL in the task data (expected data.image)", file=file, where=f"{tw}.data")
        fname, cands = image_names(url)
        return tid, key, fname, cands

    def _chosen_annotation(self, task: dict, tw: str, tid: Any) -> tuple[int, dict] | None:
        """The first annotation not cancelled (index, annotation); the others are reported."""
        anns = task.get("annotations", task.get("completions", []))
        if anns is None:
            anns = []
        if not isinstance(anns, list):
            raise InputError("expected a list of annotations", file=self.file, where=f"{tw}.annotations")
        if task.get("predictions"):
            self.report.skip("model predictions (not human labels) ignored", tid)
        chosen = None
        for ai, a in enumerate(anns):
            if not isinstance(a, dict):
                raise InputError("expected an annotation object", file=self.file, where=f"{tw}.annotations[{ai}]")
            if a.get("was_cancelled"):
                self.report.skip("cancelled (skipped) annotation", f"task {tid}")
                continue
            if chosen is None:
                chosen = (ai, a)
            else:
                self.report.skip("another annotator's annotation of the same task (the first is imported)",
                                 f"task {tid}")
        return chosen

    def _results(self, chosen: tuple[int, dict] | None, tw: str) -> tuple[list[tuple[str, dict]], Any, Any]:
        """The chosen annotation's results (where, result) and the image size the first one states."""
        width = height = None
        results: list[tuple[str, dict]] = []
        if chosen is not None:
            ai, a = chosen
            res = a.get("result", [])
            if not isinstance(res, list):
                raise InputError("expected a list of results", file=self.file, where=f"{tw}.annotations[{ai}].result")
            for ri, r in enumerate(res):
                rw = f"{tw}.annotations[{ai}].result[{ri}]"
                if not isinstance(r, dict):
                    raise InputError("expected a result object", file=self.file, where=rw)
                results.append((rw, r))
                if r.get("original_width") is not None and width is None:
                    width = r.get("original_width")
                    height = r.get("original_height")
        return results, width, height

    def _result(self, rw: str, r: dict, tid: Any, width: Any, height: Any, points: list[Point],
                rects: dict[Any, Rect], edges: list[tuple[Any, Any]]) -> None:
        """One result into the points, the parent regions or the relations of its annotation."""
        file, report = self.file, self.report
        typ = r.get("type")
        if typ == "relation":
            u, v = _rid(r.get("from_id"), file, f"{rw}.from_id"), _rid(r.get("to_id"), file, f"{rw}.to_id")
            if u is not None and v is not None:
                edges.append((u, v))
            return
        val = r.get("value")
        if typ not in ("keypointlabels", "rectanglelabels"):
            report.skip(f"{typ!r} result (not a keypoint or its region)", f"task {tid}")
            return
        if not isinstance(val, dict):
            raise InputError("expected a 'value' object", file=file, where=f"{rw}.value")
        ow, oh = r.get("original_width", width), r.get("original_height", height)
        if ow is None or oh is None:
            raise InputError("original_width/original_height missing: cannot turn percent into pixels",
                             file=file, where=rw)
        ow, oh = _num(ow, file, f"{rw}.original_width"), _num(oh, file, f"{rw}.original_height")
        rot = r.get("image_rotation", 0) or 0
        if rot:
            report.warnings.append(f"task {tid}: image_rotation {rot} ignored (points are read unrotated)")
        # percent -> pixels; rounded to 1/1000 px so exact pixel positions come back as integers
        x = round(_num(val.get("x"), file, f"{rw}.value.x") * ow / 100.0, 3)
        y = round(_num(val.get("y"), file, f"{rw}.value.y") * oh / 100.0, 3)
        if typ == "rectanglelabels":
            if (val.get("rotation") or 0) != 0:
                report.warnings.append(f"task {tid}: rotated rectangle read as its unrotated box")
            w = round(_num(val.get("width"), file, f"{rw}.value.width") * ow / 100.0, 3)
            h = round(_num(val.get("height"), file, f"{rw}.value.height") * oh / 100.0, 3)
            labs = val.get("rectanglelabels") or []
            rects[_rid(r.get("id"), file, f"{rw}.id")] = (rw, (x, y, w, h), [str(v) for v in labs] if isinstance(labs, list) else [])
            return
        self._point(rw, r, val, tid, x, y, points)

    def _point(self, rw: str, r: dict, val: dict, tid: Any, x: float, y: float, points: list[Point]) -> None:
        from .builder import normalize_name

        file, report, control = self.file, self.report, self.control
        if control is not None and r.get("from_name") != control:
            report.skip(f"point of another keypoint control ({r.get('from_name')!r}, not --control {control!r})",
                        f"task {tid}")
            return
        labs = val.get("keypointlabels")
        if not isinstance(labs, list) or not labs or not isinstance(labs[0], str):
            raise InputError(f"expected keypointlabels: [name], got {labs!r}", file=file,
                             where=f"{rw}.value.keypointlabels")
        if len(labs) > 1:
            report.warnings.append(f"{rw}: a point with several labels {labs}; the first is used")
        s = self.slots.get(normalize_name(labs[0]))
        if s is None:
            self.unknown.setdefault(labs[0], rw)
            report.skip(f"keypoint name {labs[0]!r} not in skeleton {self.skeleton.name!r}", f"task {tid}")
            return
        self.known_points += 1
        points.append((rw, _rid(r.get("id"), file, f"{rw}.id"), s, x, y, _rid(r.get("parentID"), file, f"{rw}.parentID")))

    def _groups(self, points: list[Point], rects: dict[Any, Rect], edges: list[tuple[Any, Any]], find: Any,
                tid: Any) -> tuple[dict[Any, list[Point]], bool]:
        """Points into instances: parent region, else relation components, else the one rectangle
        that contains them, else (in a task without that ambiguity) the whole task."""
        related = {u for e in edges for u in e}
        has_structure = any(p[5] is not None for p in points) or bool(edges)
        groups: dict[Any, list[Point]] = {}
        loose: list[Point] = []
        for p in points:
            if p[5] is not None:
                groups.setdefault(find(p[5]), []).append(p)
            elif p[1] in related:
                groups.setdefault(find(p[1]), []).append(p)
            else:
                loose.append(p)
        if loose and rects:
            loose = self._into_rectangles(loose, rects, groups, find, tid)
        if loose:
            names = [p[2] for p in loose]
            if rects and len(set(names)) < len(names):
                # outside every rectangle and a name twice: several animals, which cannot be told apart
                for p in loose:
                    self.report.skip("point without parentID or relation outside every rectangle, its name repeated "
                                     "(ambiguous: given to no animal)", f"task {tid} {self.skeleton.coco_keypoints[p[2]]}")
            else:
                if has_structure or rects:
                    self.report.repair("points with no parent region, relation or rectangle grouped into one "
                                       "instance", f"task {tid}")
                groups[("task", tid)] = loose
        return groups, has_structure

    def _into_rectangles(self, loose: list[Point], rects: dict[Any, Rect], groups: dict[Any, list[Point]], find: Any,
                         tid: Any) -> list[Point]:
        """Points with no parentID or relation given to the one rectangle that contains them; a
        point inside several rectangles cannot be given to an animal without guessing. Returns the
        points outside every rectangle."""
        lx = np.array([p[3] for p in loose])
        ly = np.array([p[4] for p in loose])
        boxes = np.array([box for _rw, box, _labs in rects.values()])
        inside = (lx[:, None] >= boxes[None, :, 0]) & (lx[:, None] <= boxes[None, :, 0] + boxes[None, :, 2]) & \
            (ly[:, None] >= boxes[None, :, 1]) & (ly[:, None] <= boxes[None, :, 1] + boxes[None, :, 3])
        rids = list(rects)
        free = []
        for p, row in zip(loose, inside, strict=True):
            hits = np.flatnonzero(row)
            name = self.skeleton.coco_keypoints[p[2]]
            if len(hits) == 1:
                groups.setdefault(find(rids[hits[0]]), []).append(p)
                self.report.repair("point without parentID or relation given to the rectangle that contains it",
                                   f"task {tid} {name}")
            elif len(hits) > 1:
                self.report.skip("point without parentID or relation inside several rectangles (ambiguous: given "
                                 "to no animal)", f"task {tid} {name}")
            else:
                free.append(p)
        return free

    def _instances(self, groups: dict[Any, list[Point]], rects: dict[Any, Rect], find: Any, has_structure: bool,
                   tid: Any, where: str) -> None:
        """One builder instance per group, and per rectangle of the category that holds no point."""
        from .builder import RawInstance, normalize_name

        report, skeleton = self.report, self.skeleton
        rect_of: dict[Any, Any] = {}
        for rid in rects:
            rect_of.setdefault(find(rid), rid)
        for rid, (_rw, _box, labs) in rects.items():
            if find(rid) in groups:
                continue
            if not labs or normalize_name(self.cat_name) in {normalize_name(v) for v in labs}:
                groups[find(rid)] = []
            else:
                report.skip(f"rectangle labelled {labs} with no keypoints (not category {self.cat_name!r})",
                            f"task {tid}")
        for n, (g, pts) in enumerate(groups.items()):
            report.instances_read += 1
            kp = np.zeros((len(skeleton.coco_keypoints), 3))
            repeated = []
            for _rw, _pid, s, x, y, _par in pts:
                if kp[s, 2] > 0:
                    repeated.append(skeleton.coco_keypoints[s])
                    continue
                kp[s] = (x, y, 2.0)
            if repeated:
                what = ("keypoint name repeats in one instance (task has no parent regions or relations to "
                        "separate instances): the first point kept") if not has_structure else \
                    "keypoint name repeats in one instance: the first point kept"
                report.repair(what, f"task {tid}", n=len(repeated))
                report.warnings.append(f"task {tid}: keypoint(s) {sorted(set(repeated))} placed more than once in one "
                                       "instance; use a parent region or relations to separate people")
            rid = rect_of.get(g) if not isinstance(g, tuple) else None
            rect = rects.get(rid) if rid is not None else None
            self.builder.add_instance(RawInstance(image_key=tid, keypoints=kp, bbox=rect[1] if rect else None,
                                                  source_id=f"task {tid} #{n + 1}", where=where))
