"""COCO keypoint JSON parsed without building the polygons that convert never reads.

A COCO-train-sized file holds ~9 million polygon coordinates; parsing them into Python floats was
about half of the parse and a share of freeing it, yet validate and convert read a segmentation
only for crowd regions. `parse_coco` decodes the file against COCO's own annotation record (the
nine fields COCO writes, no others), keeps each non-crowd segmentation as its raw JSON text and
hands back the same dicts `parse_json` would, apart from that.

It declines (returns None, the caller then parses it generically) anything that is not exactly that
shape: an annotation with a field missing or an extra one (a tool's export, a damaged record), a
top-level key other than info, licenses, images, annotations and categories, and anything msgspec
itself refuses (NaN, bad JSON). Only the readers of `posedata convert`'s label path take its result.

Keypoints too stay raw JSON text in the records; when every annotation has COCO's types they are
parsed at once into one array (columns.NumberRows): a COCO-train-sized file has 7.6M keypoint
numbers, which as Python ints and lists cost the parse, the stacking and the freeing ~0.4 s of CPU
and ~115 MB, and twice both at twice the size.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from itertools import chain, compress, repeat
from typing import Any

import numpy as np

from .columns import NumberRows, TypedRecords

try:
    import msgspec
except ImportError:  # pragma: no cover - a dependency; the generic parse is used without it
    msgspec = None  # type: ignore[assignment]

if msgspec is not None:
    class _Annotation(msgspec.Struct, forbid_unknown_fields=True):
        # COCO's field order, so the dicts come out in the order COCO files write them
        segmentation: msgspec.Raw
        num_keypoints: Any
        area: Any
        iscrowd: Any
        keypoints: Any
        image_id: Any
        bbox: Any
        category_id: Any
        id: Any

    class _Coco(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        info: Any = msgspec.UNSET
        licenses: Any = msgspec.UNSET
        images: Any
        annotations: list[_Annotation]
        categories: Any

    class _TypedAnnotation(msgspec.Struct, forbid_unknown_fields=True):
        # the same record with the types validate's screen would otherwise scan for (msgspec
        # checks them as it parses, for free): a file whose every annotation has them is parsed
        # once, into columns.TypedRecords; any other value (a bool, a string, 1.0 as iscrowd, an
        # int beyond 64 bits) fails this decode and the file is parsed with _Annotation
        segmentation: msgspec.Raw
        num_keypoints: int
        area: int | float
        iscrowd: int
        keypoints: msgspec.Raw  # checked and parsed by _number_rows: lists of ints and floats
        image_id: int
        bbox: list[int | float]
        category_id: int
        id: int

    class _TypedCoco(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        info: Any = msgspec.UNSET
        licenses: Any = msgspec.UNSET
        images: Any
        annotations: list[_TypedAnnotation]
        categories: Any

    _decode_typed = msgspec.json.Decoder(_TypedCoco).decode
    _decode = msgspec.json.Decoder(_Coco).decode
    _decode_any = msgspec.json.Decoder().decode
    _decode_numbers = msgspec.json.Decoder(list[int | float]).decode

# the bytes of JSON lists of integers (valid JSON, as msgspec checked it); floats add these
_INT_LIST_BYTES = b"0123456789-, \t\n\r[]"
_FLOAT_BYTES = b".eE+"
_UNBRACKET = bytes.maketrans(b"[]", b"  ")
# every digit as "d", a float's characters as "f", anything else as ",": a float or an integer of
# 10 digits or more (beyond int32, the column's type) is then found by plain substring search
_MARKS = bytes(ord("d") if c in b"0123456789" else ord("f") if c in _FLOAT_BYTES else ord(",") for c in range(256))
_LONG = b"d" * 10
_ODD = re.compile(rb"f|d{10,}")
_DICT_ROWS = 16384
ROWS = 512  # rows of keypoint text read at a time: ~90 kB of COCO text, under glibc malloc's mmap threshold, so every block reuses the same heap pages


def _number_rows(raws: list[Any]) -> NumberRows | None:
    """The raw JSON texts `raws` (each a valid JSON value) as NumberRows, or None when one is not
    a list of numbers only (a string, a bool, null, an object, a nested list or a bare number:
    the untyped parse then reads the file, as the typed decode of such a value fails).

    Lists of integers of up to 9 digits are read by np.fromstring over their joined text into
    int32 (exact, and so is their float64, as json.loads's int converts to it; half the memory of
    int64). A list with a float, a longer integer or no number at all is read by msgspec, one by
    one. The texts are joined, checked and read ROWS rows at a time: the whole text joined
    (51 MB at 300k annotations) and its three translated copies were ~200 MB of fresh pages,
    which this VM's kernel charges heavily for (bench/README.md, "convert")."""
    n = len(raws)
    if not n:
        return NumberRows(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64))
    count = np.empty(n, dtype=np.int64)
    slow: list[int] = []
    for lo in range(0, n, ROWS):
        part = raws[lo:lo + ROWS]
        found = _count_numbers(part, count[lo:lo + len(part)])
        if found is None:
            return None
        slow.extend(j + lo for j in found)
    fast = np.ones(n, dtype=bool)
    fast[slow] = False
    ints = np.empty(int(count[fast].sum()), dtype=np.int32)
    at = 0
    for lo in range(0, n, ROWS):  # the second pass: fast rows' numbers, read into their place
        part = raws[lo:lo + ROWS] if not slow else list(compress(raws[lo:lo + ROWS], fast[lo:lo + ROWS].tolist()))
        if not part:
            continue
        text = b",".join(part).translate(_UNBRACKET)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy warns (and stops) at a token it cannot read
                block = np.fromstring(text, dtype=np.int32, sep=",")
        except (ValueError, DeprecationWarning):  # pragma: no cover - the text was checked in the first pass
            return None
        if len(block) != int(count[lo:lo + ROWS][fast[lo:lo + ROWS]].sum()):  # pragma: no cover - as above
            return None
        ints[at:at + len(block)] = block
        at += len(block)
    if not slow:
        return NumberRows(ints, count)
    lists = []
    for i in slow:
        try:
            lists.append(_decode_numbers(raws[i]))
        except msgspec.ValidationError:  # pragma: no cover - the text was checked above
            return None
        count[i] = len(lists[-1])
    values = np.empty(int(count.sum()), dtype=np.float64)
    in_fast = np.repeat(fast, count)
    values[in_fast] = ints
    values[~in_fast] = _floats(lists)
    return NumberRows(values, count)


def _count_numbers(raws: list[Any], count: np.ndarray) -> list[int] | None:
    """The first pass over `raws` (one block): None when a text is not a list of numbers, else
    the rows msgspec is to read (a float, an integer of 10 digits or more, no comma); `count` is
    set to each row's comma count + 1 (its numbers, for the other rows)."""
    n = len(raws)
    length = np.fromiter(map(len, raws), dtype=np.int64, count=n)
    end = np.cumsum(length + 1) - 1  # row i is text[end[i] - length[i]:end[i]]
    begin = end - length
    text = b",".join(raws)
    other = text.translate(None, _INT_LIST_BYTES)
    if other.translate(None, _FLOAT_BYTES):
        return None  # a letter or a quote: a string, true/false/null or an object somewhere
    if text.count(b"[") != n or not (np.frombuffer(text, dtype=np.uint8)[begin] == ord("[")).all():
        return None  # a bare number, or a list inside a list
    commas = np.fromiter(map(text.count, repeat(b","), begin.tolist(), end.tolist()), dtype=np.int64, count=n)
    count[:] = commas + 1
    slow = set(np.flatnonzero(commas == 0).tolist())
    marks = text.translate(_MARKS)
    if other or _LONG in marks:  # a regular expression over the text only then
        slow.update(np.searchsorted(end, [m.start() for m in _ODD.finditer(marks)]).tolist())
    return sorted(slow)


def _floats(lists: list[list[Any]]) -> np.ndarray:
    """The numbers of `lists` in one float64 array; an int beyond float range is inf (validate
    reports it as non-finite, as any non-finite value, and convert drops its row)."""
    total = sum(map(len, lists))
    try:
        return np.fromiter(chain.from_iterable(lists), dtype=np.float64, count=total)
    except OverflowError:
        return np.array([_float(v) for v in chain.from_iterable(lists)], dtype=np.float64).reshape(total)


def _float(v: int | float) -> float:
    try:
        return float(v)
    except OverflowError:
        return float("inf")


def keypoint_lists(anns: list[Any], rows: Iterable[int]) -> None:
    """The annotations `rows` of a parse_coco parse with their keypoints as lists (read from the
    raw JSON text parse_coco left there), for the code that reads records one by one."""
    if msgspec is None:  # pragma: no cover - then parse_coco never ran
        return
    for i in rows:
        a = anns[i]
        kp = a.get("keypoints") if type(a) is dict else None
        if type(kp) is msgspec.Raw:
            a["keypoints"] = _decode_any(kp)


def parse_coco(data: bytes) -> dict[str, Any] | None:
    """The parse of COCO keypoint JSON `data` (no byte-order mark) as plain dicts and lists, every
    value as json.loads gives it except the segmentation of annotations whose iscrowd is exactly
    the integer 0: those stay `msgspec.Raw` (their JSON text, a view of `data`). The annotations
    list is a columns.TypedRecords when every annotation's values have COCO's types (see
    _TypedAnnotation); its keypoints are then parsed into TypedRecords.keypoints and each record's
    stay `msgspec.Raw` too (keypoint_lists reads them). None when the file is not plain COCO (see
    the module's docstring)."""
    if msgspec is None:
        return None
    try:
        coco = _decode_typed(data)
        numbers = _number_rows([a.keypoints for a in coco.annotations])
    except Exception:  # noqa: BLE001 - another value type somewhere: the untyped record below
        numbers = None
    if numbers is None:
        try:
            coco = _decode(data)
        except Exception:  # noqa: BLE001 - bad JSON, deep nesting, another shape: the generic parse decides
            return None
    from msgspec.structs import asdict

    anns = [] if numbers is None else TypedRecords(keypoints=numbers)
    structs, coco.annotations = coco.annotations, []
    for lo in range(0, len(structs), _DICT_ROWS):
        # each block's structs freed as soon as their dicts exist: the dicts then take the
        # structs' freed memory instead of ~30 MB (300k annotations) of fresh pages
        hi = min(lo + _DICT_ROWS, len(structs))
        anns.extend(map(asdict, structs[lo:hi]))
        structs[lo:hi] = repeat(None, hi - lo)
    del structs
    for a in anns:
        c = a["iscrowd"]
        if c != 0 or type(c) is not int:  # a crowd region (or an odd flag): readers may need its shape
            try:
                a["segmentation"] = _decode_any(a["segmentation"])
            except Exception:  # noqa: BLE001 - as above
                return None
    out: dict[str, Any] = {}
    for key in ("info", "licenses"):
        v = getattr(coco, key)
        if v is not msgspec.UNSET:
            out[key] = v
    out["images"], out["annotations"], out["categories"] = coco.images, anns, coco.categories
    return out
