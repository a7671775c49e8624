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
"""
from __future__ import annotations

from typing import Any

from .columns import TypedRecords

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
        keypoints: list[int | float]
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


def parse_coco(data: bytes) -> dict[str, Any] | None:
    """The parse of COCO keypoint JSON `data` (no byte-order mark) as plain dicts and lists, every
    value as json.loads gives it except the segmentation of annotations whose iscrowd is exactly
    the integer 0: those stay `msgspec.Raw` (their JSON text, a view of `data`). The annotations
    list is a columns.TypedRecords when every annotation's values have COCO's types (see
    _TypedAnnotation). None when the file is not plain COCO (see the module's docstring)."""
    if msgspec is None:
        return None
    try:
        coco = _decode_typed(data)
        typed = True
    except Exception:  # noqa: BLE001 - another value type somewhere: the untyped record below
        try:
            coco = _decode(data)
            typed = False
        except Exception:  # noqa: BLE001 - bad JSON, deep nesting, another shape: the generic parse decides
            return None
    from msgspec.structs import asdict

    anns = (TypedRecords if typed else list)(map(asdict, coco.annotations))
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
