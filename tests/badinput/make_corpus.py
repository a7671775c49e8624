"""Write the bad-input corpus: every reader of posedata fed broken files, made by code, not by hand.

    .venv/bin/python tests/badinput/make_corpus.py            # (re)write tests/badinput/{base,cases,manifest.json}
    .venv/bin/python tests/badinput/make_corpus.py --out DIR  # write elsewhere (the test compares the two)

`base/` holds the good inputs a case needs next to its one broken file (a valid COCO file and its
images, the import fixtures' skeleton, a tiny synthetic training set with its label file and a good
checkpoint). Each case is a folder `cases/<name>/` holding the broken input (and, for image cases,
its own images folder). manifest.json lists, per case: the reader (`kind`), the broken input, the
commands to run on it (see tests/test_badinput.py), the exit code each must give and a location
string the message must contain.

Every file is derived deterministically from posedata's own templates, tests/data/import fixtures
and posedata.synth, so re-running the script reproduces the committed corpus byte for byte.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURES = ROOT / "tests" / "data" / "import"
sys.path.insert(0, str(ROOT))

# commands per reader; the test knows how to build each command line
COCO_CMDS = ["validate", "convert", "check", "flipcheck", "preview"]
# `import coco-annotator` repairs much of what validate rejects (its job); it runs where it must refuse
COCO_IMPORT = COCO_CMDS + ["import"]
IMAGE_CMDS = ["validate", "convert", "check", "flipcheck", "import", "preview"]
IMPORT_CMDS = ["import", "import-auto", "convert"]
SKELETON_CMDS = ["skeleton-check", "skeleton-show", "validate", "convert", "check"]
LABEL_CMDS = ["train-labels", "preview-labels"]
CKPT_CMDS = ["train-init", "val"]
VAL_IMAGE_CMDS = ["val", "infer"]


class Corpus:
    def __init__(self, out: Path):
        self.out = out
        self.cases: list[dict] = []

    def case(self, name: str, kind: str, files: dict[str, bytes], input: str, expect: int | dict[str, int],
             where: str, what: str, cmds: list[str], **extra) -> None:
        d = self.out / "cases" / name
        d.mkdir(parents=True)
        for rel, data in files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        if isinstance(expect, int):
            expect = {c: expect for c in cmds}
        self.cases.append({"name": name, "kind": kind, "input": input, "what": what, "where": where,
                           "expect": {c: expect[c] for c in cmds}, **extra})

    def write_manifest(self) -> None:
        doc = {"generator": "tests/badinput/make_corpus.py", "cases": self.cases}
        (self.out / "manifest.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def rep(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the first occurrence, which must exist (a silent no-op would make a good case)."""
    assert old in data, old
    return data.replace(old, new, 1)


def jbytes(obj, indent: int | None = 1) -> bytes:
    return json.dumps(obj, indent=indent, allow_nan=True).encode("utf-8")


# ------------------------------------------------------------------ images
def png(w: int, h: int, color: tuple[int, int, int] = (90, 120, 150)) -> bytes:
    """A real, decodable RGB PNG (stdlib only, deterministic bytes)."""
    row = b"\x00" + bytes(color) * w
    raw = row * h
    return _png_chunks(w, h, zlib.compress(raw, 9))


def _png_chunks(w: int, h: int, idat: bytes, end: bool = True) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", idat)
    return out + (chunk(b"IEND", b"") if end else b"")


def png_bomb() -> bytes:
    """A few hundred bytes whose header claims 30000 x 30000 RGB: decoding would allocate 2.7 GB.
    The IDAT holds a little real zlib data (the first rows), so a decoder starts allocating."""
    rows = (b"\x00" + b"\x00" * 30000 * 3) * 4
    return _png_chunks(30000, 30000, zlib.compress(rows, 9))


def jpeg_bomb() -> bytes:
    """A JPEG header (SOI, APP0, DQT, SOF0 30000 x 30000, DHT, SOS) followed by a little entropy data."""
    soi = b"\xff\xd8"
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 30000, 30000, 1) + b"\x01\x11\x00"
    # one DC and one AC table, each with a single 1-bit code
    dht = b"\xff\xc4" + struct.pack(">H", 2 + 2 * 17 + 2) + b"\x00" + bytes([1] + [0] * 15) + b"\x00" \
        + b"\x10" + bytes([1] + [0] * 15) + b"\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x3f\x00"
    return soi + app0 + dqt + sof + dht + sos + b"\x00" * 4096 + b"\xff\xd9"


def tiff_bomb() -> bytes:
    """An uncompressed greyscale TIFF whose header claims 30000 x 30000 (OpenCV has no header-only
    read, so only a size check before cv2.imread keeps it from being decoded)."""
    w = h = 30000
    data_at = 8 + 2 + 12 * 9 + 4
    entries = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, data_at), (277, 3, 1),
               (278, 4, h), (279, 4, w * h)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, 4, 1, v) if typ == 4 else struct.pack("<HHIHH", tag, 3, 1, v, 0)
        for tag, typ, v in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4096


def hdr_bomb(width: int = 17000, height: int = 16000, size: int = 4096) -> bytes:
    """A Radiance HDR whose header claims width x height (a format posedata has no header parser
    for: OpenCV allocates the float image its header claims before reading a pixel). size pads the
    file (bench/bench_refusals.py writes the 17 MB original)."""
    head = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (height, width)
    return head + b"\x02\x02" + struct.pack(">H", width) + b"\x80" * (size - len(head) - 4)


# ------------------------------------------------------------------ base data
COCO17_KP = None


def person(x0: float, y0: float, k: int) -> list:
    """k keypoints spread over a 40 x 36 box, all labelled and visible."""
    flat = []
    for j in range(k):
        flat += [round(x0 + 2 + (j % 6) * 7.0, 1), round(y0 + 2 + (j // 6) * 11.0, 1), 2]
    return flat


def base_coco(kp_names: list[str], limbs: list[list[int]], files: list[tuple[str, int, int]]) -> dict:
    k = len(kp_names)
    images, anns = [], []
    for i, (fn, w, h) in enumerate(files):
        images.append({"id": i + 1, "file_name": fn, "width": w, "height": h})
        anns.append({"id": 100 + i, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                     "keypoints": person(8, 4, k), "num_keypoints": k,
                     "bbox": [8, 4, 40, 36], "area": 1440, "segmentation": []})
    return {"info": {"description": "posedata bad-input corpus base"}, "licenses": [], "images": images,
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": kp_names,
                            "skeleton": limbs}]}


def make_base(c: Corpus) -> dict:
    """Good inputs the cases lean on. Returns the base COCO dict (coco17, two 64 x 48 images)."""
    from posedata import skeleton as S

    base = c.out / "base"
    (base / "images").mkdir(parents=True)
    sk = S.resolve("coco17")
    kp = list(sk.coco_keypoints)
    limbs = [[a + 1, b + 1] for a, b in sk.limbs]
    data = base_coco(kp, limbs, [("a.png", 64, 48), ("b.png", 64, 48)])
    (base / "coco.json").write_bytes(jbytes(data))
    (base / "images" / "a.png").write_bytes(png(64, 48))
    (base / "images" / "b.png").write_bytes(png(64, 48, (150, 120, 90)))
    shutil.copyfile(FIXTURES / "dlc_mouse.yaml", base / "mouse.yaml")
    return data


def make_train_base(c: Corpus) -> None:
    """A tiny synthetic training set (object5), its label file and a good checkpoint."""
    from posedata import skeleton as S
    from posedata.convert import load_source, to_labels
    from posedata.labels import save
    from posedata.synth import generate

    sk = S.resolve("object5")
    d = c.out / "base" / "train"
    generate(sk, d, 3, (64, 64), seed=7)
    # the label file records its source relative to itself, so the corpus can move
    src = load_source(d / "annotations.json", sk)
    labels = to_labels(src.data, sk, source="annotations.json", source_sha256=src.sha256)
    save(labels, d / "labels.npz")

    import torch

    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    torch.manual_seed(0)
    model = for_skeleton(sk, stages=0, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint, iteration=0),
           d / "good.pt")


# ------------------------------------------------------------------ cases
def coco_cases(c: Corpus, good: dict) -> None:
    K = len(good["categories"][0]["keypoints"])

    def mut(fn) -> bytes:
        d = copy.deepcopy(good)
        fn(d)
        return jbytes(d)

    def add(name, data: bytes, expect, where, what, cmds=COCO_CMDS):
        c.case(name, "coco", {"data.json": data}, "data.json", expect, where, what, cmds)

    def ex(default: int, cmds=COCO_CMDS, **over: int) -> dict[str, int]:
        return {x: over.get(x, default) for x in cmds}

    text = jbytes(good)
    # unreadable: exit 2 everywhere, `import` included
    add("coco_empty", b"", 2, "empty file", "empty file", COCO_IMPORT)
    add("coco_whitespace", b"  \n\t\n", 2, "empty file", "whitespace only", COCO_IMPORT)
    add("coco_truncated", text[: len(text) // 2], 2, "line", "cut in the middle", COCO_IMPORT)
    add("coco_not_utf8", rep(text, b'"person"', b'"pers\xff\xfeon"'), 2, "UTF-8", "Latin-1 bytes in a string",
        COCO_IMPORT)
    add("coco_binary", bytes(range(256)) * 4, 2, "data.json", "binary junk", COCO_IMPORT)
    add("coco_deep_nesting", b'{"images": ' + b"[" * 100000 + b"]" * 100000 + b"}", 2, "nested",
        "100000 nested lists", COCO_IMPORT)
    # wrong structure: validate reports it (1); readers that need the structure refuse (2)
    top = ex(2, COCO_IMPORT, validate=1, flipcheck=1)
    add("coco_top_list", b"[1, 2, 3]\n", top, "top level", "top level is a list", COCO_IMPORT)
    c.case("coco_top_null", "coco", {"data.json": b"null\n"}, "data.json", top, "top level", "top level is null",
           COCO_IMPORT, where_cmd={x: "not COCO keypoint JSON" for x in ("convert", "preview", "check")})
    add("coco_images_object", mut(lambda d: d.update(images={"a": 1})), ex(1, COCO_IMPORT, convert=2, preview=2, check=2,
        **{"import": 2}), "images", "images is an object", COCO_IMPORT)
    add("coco_ann_not_object", mut(lambda d: d["annotations"].__setitem__(0, [1, 2])), 1, "annotations[0]",
        "annotation is a list")
    add("coco_id_string", mut(lambda d: d["annotations"][0].update(id="one hundred")), 1, "annotations[0].id",
        "annotation id is a string")
    add("coco_bool_id", mut(lambda d: d["images"][0].update(id=True)), 1, "images[0].id", "image id true")

    def set_kp(i, v):
        def f(d):
            d["annotations"][0]["keypoints"][i] = v
        return f

    # bad numbers: validate's findings (1); the importer refuses a value it cannot repair (2)
    num = ex(1, COCO_IMPORT, **{"import": 2})
    add("coco_kp_nan", rep(text, b"10.0", b"NaN"), num, "annotations[0].keypoints[0]", "NaN coordinate", COCO_IMPORT)
    add("coco_kp_inf", rep(text, b"10.0", b"-Infinity"), num, "annotations[0].keypoints[0]", "-Infinity coordinate",
        COCO_IMPORT)
    add("coco_kp_huge_float", rep(text, b"10.0", b"1e400"), num, "annotations[0].keypoints[0]",
        "1e400 overflows to inf", COCO_IMPORT)
    add("coco_kp_huge_int", rep(text, b"10.0", b"9" * 400), num, "annotations[0].keypoints[0]", "400-digit integer",
        COCO_IMPORT)
    add("coco_kp_string", mut(set_kp(1, "12")), num, "annotations[0].keypoints[1]", "coordinate is a string",
        COCO_IMPORT)
    add("coco_kp_not_list", mut(lambda d: d["annotations"][0].update(keypoints={"x": 1})), num,
        "annotations[0].keypoints", "keypoints is an object", COCO_IMPORT)
    add("coco_kp_visibility", mut(set_kp(2, 7)), 1, "annotations[0].keypoints[2]", "visibility 7")
    add("coco_kp_too_long", mut(lambda d: d["annotations"][0]["keypoints"].extend([1, 1, 2])), 1,
        "annotations[0].keypoints", "3*K+3 values")
    add("coco_kp_too_short", mut(lambda d: d["annotations"][0].update(keypoints=d["annotations"][0]["keypoints"][:-3])),
        1, "annotations[0].keypoints", "3*K-3 values")
    add("coco_kp_not_triples", mut(lambda d: d["annotations"][0]["keypoints"].append(5)), 1,
        "annotations[0].keypoints", f"{3 * K + 1} values")
    add("coco_negative_size", mut(lambda d: d["images"][0].update(width=-64)), num, "images[0]", "negative width",
        COCO_IMPORT)
    add("coco_zero_height", mut(lambda d: d["images"][1].update(height=0)), num, "images[1]", "zero height",
        COCO_IMPORT)
    # flipcheck reads keypoints, not boxes: it runs on these (and says so), so it is not a refusal case here
    no_flip = [x for x in COCO_CMDS if x != "flipcheck"]
    add("coco_negative_bbox", mut(lambda d: d["annotations"][0].update(bbox=[8, 4, -40, 36])), 1,
        "annotations[0].bbox", "negative box width", no_flip)
    add("coco_bbox_nan", rep(text, b'"bbox": [\n    8', b'"bbox": [\n    NaN'), 1, "annotations[0].bbox",
        "NaN in a box", no_flip)
    add("coco_dup_image_id", mut(lambda d: d["images"][1].update(id=1)), num, "images[1].id", "duplicate image id",
        COCO_IMPORT)
    add("coco_dup_ann_id", mut(lambda d: d["annotations"][1].update(id=100)), 1, "annotations[1].id",
        "duplicate annotation id")
    add("coco_dangling_image", mut(lambda d: d["annotations"][1].update(image_id=999)), 1,
        "annotations[1].image_id", "image_id names no image")
    add("coco_dangling_category", mut(lambda d: d["annotations"][1].update(category_id=42)), num,
        "annotations[1].category_id", "category_id names no category", COCO_IMPORT)
    add("coco_unknown_names", mut(lambda d: d["categories"][0]["keypoints"].__setitem__(0, "snoot")), num,
        "snoot", "a keypoint name the skeleton does not know", COCO_IMPORT)
    add("coco_no_kp_category", mut(lambda d: d["categories"][0].pop("keypoints")), num, "categories",
        "no category has keypoints", COCO_IMPORT)


def image_cases(c: Corpus, good: dict) -> None:
    def add(name, files, data, expect, where, what):
        c.case(name, "images", {"data.json": jbytes(data), **files}, "data.json", expect, where, what,
               [x for x in IMAGE_CMDS if x in expect], images="images")

    ok = {"images/a.png": png(64, 48)}

    def with_b(fn_b: str, w=64, h=48):
        d = copy.deepcopy(good)
        d["images"][1].update(file_name=fn_b, width=w, height=h)
        return d

    # validate, check, convert, flipcheck report the file (1); import cannot resolve or size it and
    # preview cannot decode it (2). The message names the image file.
    bad = {**{x: 1 for x in IMAGE_CMDS}, "import": 2, "preview": 2}
    # an image that is not there (or not inside the images folder) is the data's error for import
    # too, as validate's V050: exit 1
    gone = {**bad, "import": 1}
    add("img_missing", ok, with_b("nowhere.png"), gone, "nowhere.png", "image file missing")
    add("img_corrupt", {**ok, "images/b.png": b"\x89PNG\r\n\x1a\n" + bytes(range(7, 200))}, with_b("b.png"), bad,
        "b.png", "PNG signature then junk")
    add("img_not_image", {**ok, "images/b.png": b"hello, I am a text file\n"}, with_b("b.png"), bad, "b.png",
        "text in a .png")
    add("img_empty", {**ok, "images/b.png": b""}, with_b("b.png"), bad, "b.png", "empty image file")
    add("img_cut_header", {**ok, "images/b.png": png(64, 48)[:20]}, with_b("b.png"), bad, "b.png",
        "PNG cut inside its header")
    # flipcheck draws the real image, whatever size the JSON claims: not a refusal case for it
    add("img_size_mismatch", {**ok, "images/b.png": png(32, 32)}, with_b("b.png"),
        {k: v for k, v in {**bad, "import": 1}.items() if k != "flipcheck"}, "b.png",
        "file 32x32, JSON 64x48")
    # the worst case: the JSON agrees with the header, so only a size guard stops the decode
    big = {**bad, "import": 1}
    add("img_bomb_png", {**ok, "images/b.png": png_bomb()}, with_b("b.png", 30000, 30000), big, "30000x30000",
        "PNG header claims 30000x30000")
    add("img_bomb_jpeg", {**ok, "images/b.jpg": jpeg_bomb()}, with_b("b.jpg", 30000, 30000), big, "30000x30000",
        "JPEG header claims 30000x30000")
    add("img_bomb_tiff", {**ok, "images/b.tif": tiff_bomb()}, with_b("b.tif", 30000, 30000), bad, "pixels",
        "TIFF header claims 30000x30000")
    add("img_bomb_hdr", {**ok, "images/b.hdr": hdr_bomb()}, with_b("b.hdr", 17000, 16000), bad, "b.hdr",
        "Radiance HDR header claims 17000x16000 (no header parser: refused unread)")
    add("img_path_dotdot", {**ok, "outside.png": png(64, 48)}, with_b("../outside.png"), gone, "../outside.png",
        "file_name ../outside.png")
    add("img_path_absolute", ok, with_b("/etc/hostname"), gone, "/etc/hostname", "absolute file_name")
    c.case("img_path_nul", "images", {"data.json": jbytes(with_b("b.png\x00.jpg")), **ok}, "data.json", gone, "NUL",
           "a NUL character in file_name", IMAGE_CMDS, images="images", where_cmd={"import": "b.png"})
    d = c.out / "cases" / "img_symlink_out"
    add("img_symlink_out", {**ok, "outside.png": png(64, 48)}, with_b("b.png"), gone, "b.png",
        "images/b.png is a symlink to ../outside.png")
    os.symlink("../outside.png", d / "images" / "b.png")


def import_cases(c: Corpus) -> None:
    def add(name, fmt, files, input, expect, where, what, skeleton, cmds=IMPORT_CMDS, **extra):
        c.case(name, f"import:{fmt}", files, input, expect, where, what, cmds, skeleton=skeleton, **extra)

    # coco-annotator
    ca = (FIXTURES / "coco_annotator_export.json").read_bytes()
    raw = json.loads(ca)
    add("ca_truncated", "coco-annotator", {"export.json": ca[: len(ca) * 2 // 3]}, "export.json", 2, "line",
        "export cut short", "coco17")
    bad = copy.deepcopy(raw)
    kcat = next(x for x in bad["categories"] if x.get("keypoints"))
    kcat["keypoints"][3] = "left_antenna"
    add("ca_unknown_names", "coco-annotator", {"export.json": jbytes(bad)}, "export.json", 2, "left_antenna",
        "a keypoint name the skeleton lacks", "coco17")
    bad = copy.deepcopy(raw)
    bad["annotations"] = "none"
    add("ca_annotations_string", "coco-annotator", {"export.json": jbytes(bad)}, "export.json",
        2, "annotations", "annotations is a string", "coco17", cmds=["import", "convert"])

    # CVAT
    xml = (FIXTURES / "cvat_images_1_1.xml").read_bytes()
    add("cvat_xml_truncated", "cvat", {"annotations.xml": xml[: len(xml) // 2]}, "annotations.xml", 2, "line",
        "XML cut in the middle", "object5")
    add("cvat_xml_not_utf8", "cvat", {"annotations.xml": rep(xml, b"<annotations>", b"<annotations>\xff\xfe")},
        "annotations.xml", 2, "annotations.xml", "undecodable bytes", "object5")
    cc = json.loads((FIXTURES / "cvat_coco_keypoints.json").read_bytes())
    bad = copy.deepcopy(cc)
    bad["annotations"][0]["keypoints"] = bad["annotations"][0]["keypoints"][:-4]
    add("cvat_coco_kp_short", "cvat", {"cvat_coco.json": jbytes(bad)}, "cvat_coco.json",
        {"import": 2, "import-auto": 2, "convert": 2}, "annotations[0].keypoints", "keypoints not 3*K", "object5")

    # Label Studio
    ls = (FIXTURES / "label_studio_export.json").read_bytes()
    add("ls_truncated", "label-studio", {"export.json": ls[: len(ls) // 2]}, "export.json", 2, "line",
        "export cut short", "object5")
    lsr = json.loads(ls)
    add("ls_top_object", "label-studio", {"export.json": jbytes({"tasks": lsr})}, "export.json",
        {"import": 2, "import-auto": 2, "convert": 2}, "export.json", "tasks wrapped in an object", "object5")
    bad = copy.deepcopy(lsr)
    for r in bad[0]["annotations"][0]["result"]:
        if r.get("type") == "keypointlabels":
            r["value"]["x"] = float("nan")
            break
    add("ls_nan_percent", "label-studio", {"export.json": jbytes(bad)}, "export.json",
        {"import": 2, "import-auto": 2, "convert": 2}, "[0]", "NaN percent coordinate", "object5")

    # DeepLabCut
    dlc = FIXTURES / "dlc_project" / "labeled-data" / "mouse1"
    csv = (dlc / "CollectedData_Alice.csv").read_bytes()
    imgs = {f"labeled-data/mouse1/{p.name}": p.read_bytes() for p in sorted(dlc.glob("*.png"))}
    inp = "labeled-data/mouse1/CollectedData_Alice.csv"
    add("dlc_truncated_header", "deeplabcut", {**imgs, inp: b"\n".join(csv.splitlines()[:2]) + b"\n"}, inp, 2,
        "CollectedData_Alice.csv", "only two of the three header rows", "base/mouse.yaml")
    add("dlc_unknown_bodypart", "deeplabcut", {**imgs, inp: csv.replace(b"snout", b"whisker")}, inp, 2, "whisker",
        "a bodypart the skeleton lacks", "base/mouse.yaml")
    lines = csv.splitlines()
    cells = lines[3].split(b",")
    cells[-1] = b"twelve"
    add("dlc_non_numeric", "deeplabcut", {**imgs, inp: b"\n".join(lines[:3] + [b",".join(cells)] + lines[4:]) + b"\n"},
        inp, 2, "twelve", "a coordinate cell reads 'twelve'", "base/mouse.yaml")

    # Labelme
    lm = FIXTURES / "labelme_project"
    lmj = json.loads((lm / "cage_a.json").read_bytes())
    img = {"cage_a.jpg": (lm / "cage_a.jpg").read_bytes()}
    add("labelme_truncated", "labelme", {**img, "cage_a.json": (lm / "cage_a.json").read_bytes()[:300]}, "cage_a.json",
        2, "line", "JSON cut short", "base/mouse.yaml")
    bad = copy.deepcopy(lmj)
    bad["shapes"][0]["points"] = "30.5,20.0"
    add("labelme_points_string", "labelme", {**img, "cage_a.json": jbytes(bad)}, "cage_a.json", 2, "shapes[0]",
        "points is a string", "base/mouse.yaml")
    bad = copy.deepcopy(lmj)
    bad["shapes"][1]["label"] = "Left Antenna"
    add("labelme_unknown_label", "labelme", {**img, "cage_a.json": jbytes(bad)}, "cage_a.json", 2, "Left Antenna",
        "a label the skeleton lacks", "base/mouse.yaml")

    # YOLO-pose
    yd = FIXTURES / "yolo_dataset"
    yfiles = {str(p.relative_to(yd)): p.read_bytes() for p in sorted(yd.rglob("*")) if p.is_file()}
    a_txt = yfiles["labels/train/a.txt"]
    first = a_txt.splitlines()[0].split()
    add("yolo_kp_short", "yolo", {**yfiles, "labels/train/a.txt": b" ".join(first[:-3]) + b"\n"}, "data.yaml", 2,
        "a.txt", "one keypoint triple missing", "base/mouse.yaml", category="mouse")
    add("yolo_kp_nan", "yolo", {**yfiles, "labels/train/a.txt": b" ".join(first[:5] + [b"nan"] + first[6:]) + b"\n"},
        "data.yaml", 2, "a.txt", "NaN coordinate", "base/mouse.yaml", category="mouse")
    add("yolo_kpt_shape_negative", "yolo",
        {**yfiles, "data.yaml": yfiles["data.yaml"].replace(b"kpt_shape: [4, 3]", b"kpt_shape: [-4, 3]")}, "data.yaml",
        2, "kpt_shape", "kpt_shape [-4, 3]", "base/mouse.yaml", category="mouse")
    add("yolo_yaml_broken", "yolo", {**yfiles, "data.yaml": yfiles["data.yaml"] + b"names: [unclosed\n"}, "data.yaml",
        {"import": 2, "import-auto": 2, "convert": 2}, "data.yaml", "YAML syntax error", "base/mouse.yaml", category="mouse")

    # SLEAP (.slp is HDF5)
    add("sleap_truncated", "sleap", {"labels.slp": b"\x89HDF\r\n\x1a\n" + b"\x00" * 200}, "labels.slp", 2,
        "labels.slp", "HDF5 signature then zeros", "base/mouse.yaml")
    add("sleap_empty", "sleap", {"labels.slp": b""}, "labels.slp", 2, "labels.slp", "empty .slp", "base/mouse.yaml")


def skeleton_cases(c: Corpus) -> None:
    def add(name, text: bytes, where, what, expect=None):
        # `skeleton check` reports a parsed file's problems as findings (1); an unreadable file and
        # every command that needs a usable skeleton give 2
        expect = expect or {x: 1 if x == "skeleton-check" else 2 for x in SKELETON_CMDS}
        c.case(name, "skeleton", {"skeleton.yaml": text}, "skeleton.yaml", expect, where, what, SKELETON_CMDS)

    add("sk_empty", b"", "skeleton.yaml", "empty file", 2)
    add("sk_not_utf8", b"name: m\xe4use\nkeypoints: [a, b]\n", "UTF-8", "Latin-1 byte", 2)
    add("sk_top_list", b"- a\n- b\n", "top level", "top level is a list")
    add("sk_yaml_syntax", b"name: x\nkeypoints: [a, b\nlimbs: [[a, b]]\n", "line", "unclosed flow sequence", 2)
    add("sk_cycle_only",
        b"name: cyc\nkeypoints: [hub, a, b, c]\nlimbs: [[a, b], [b, c], [c, a]]\nroot: hub\nsigmas: [0.05, 0.05, 0.05, 0.05]\n",
        "limbs", "the only limbs form a cycle that does not reach the root")
    add("sk_flip_twice",
        b"name: f\nkeypoints: [nose, left_eye, right_eye, chin]\nlimbs: [[nose, left_eye], [nose, right_eye], [nose, chin]]\n"
        b"root: nose\nflip: [[left_eye, right_eye], [left_eye, chin]]\nsigmas: [0.05, 0.05, 0.05, 0.05]\n",
        "flip[1]", "left_eye paired twice")
    add("sk_unknown_limb_name",
        b"name: u\nkeypoints: [a, b]\nlimbs: [[a, zed]]\nroot: a\nsigmas: [0.05, 0.05]\n", "limbs[0][1]",
        "a limb names an unknown keypoint")
    add("sk_duplicate_keypoint",
        b"name: d\nkeypoints: [a, b, a]\nlimbs: [[a, b]]\nroot: a\nsigmas: [0.05, 0.05, 0.05]\n", "keypoints[2]",
        "a keypoint listed twice")
    add("sk_sigma_nan",
        b"name: s\nkeypoints: [a, b]\nlimbs: [[a, b]]\nroot: a\nsigmas: [.nan, -1]\n", "sigmas[0]", "NaN and negative sigmas")
    add("sk_sigma_inf",
        b"name: h\nkeypoints: [a, b]\nlimbs: [[a, b]]\nroot: a\nsigmas: [.inf, 0.05]\n", "sigmas[0]", "sigma .inf")
    # bounded before anything walks the document
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(9):
        prev, cur = chr(97 + i).encode(), chr(98 + i).encode()
        bomb += cur + b": &" + cur + b" [" + b", ".join([b"*" + prev] * 9) + b"]\n"
    add("sk_alias_bomb", bomb + b"name: *j\nkeypoints: [a, b]\nlimbs: [[a, b]]\nroot: a\n", "line",
        "nested aliases: 9^10 values from 500 bytes", 2)
    add("sk_deep_nesting", b"name: " + b"[" * 100000 + b"]" * 100000 + b"\nkeypoints: [a, b]\n", "line",
        "100 000 nested lists", 2)
    names = [f"k{i}" for i in range(1001)]
    add("sk_too_many_keypoints", (f"name: big\nkeypoints: [{', '.join(names)}]\nlimbs: ["
                                  + ", ".join(f"[k0, {n}]" for n in names[1:]) + "]\nroot: k0\n").encode(),
        "keypoints", "1001 keypoints")
    add("sk_limbs_mapping", b"name: m\nkeypoints: [a, b]\nlimbs: {a: b}\nroot: a\nsigmas: [0.05, 0.05]\n", "limbs",
        "limbs is a mapping")


def label_cases(c: Corpus) -> None:
    import numpy as np

    good = (c.out / "base" / "train" / "labels.npz").read_bytes()

    def add(name, data: bytes, where, what):
        c.case(name, "labels", {"labels.npz": data}, "labels.npz", 2, where, what, LABEL_CMDS)

    def rebuilt(**change) -> bytes:
        with np.load(io.BytesIO(good), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        arrays.update(change)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    with np.load(io.BytesIO(good), allow_pickle=False) as z:
        header = json.loads(z["header"].tobytes())
        kp = z["keypoints"]

    def hdr(h) -> np.ndarray:
        return np.frombuffer(json.dumps(h).encode("utf-8"), dtype=np.uint8)

    add("lb_empty", b"", "labels.npz", "empty file")
    add("lb_truncated", good[: len(good) // 2], "labels.npz", "zip cut in half")
    add("lb_text", b"image_id,x,y\n1,2,3\n", "labels.npz", "a CSV named .npz")
    add("lb_object_array", rebuilt(keypoints=np.array([{"x": 1}, None], dtype=object)), "labels.npz",
        "an object (pickled) array inside")
    add("lb_no_header", rebuilt(header=np.zeros(0, np.uint8)), "labels.npz", "header is not JSON")
    h = dict(header)
    h["version"] = 99
    add("lb_version", rebuilt(header=hdr(h)), "labels.npz", "version 99")
    h = dict(header)
    h["format"] = "something-else"
    add("lb_format", rebuilt(header=hdr(h)), "labels.npz", "format is not posedata-labels")
    add("lb_header_list", rebuilt(header=hdr([1, 2])), "labels.npz", "header is a JSON list")
    add("lb_shape", rebuilt(keypoints=kp[:, :-1]), "keypoints", "keypoints one column short")
    h = dict(header)
    h["fingerprint"] = "0" * len(str(header["fingerprint"]))
    add("lb_fingerprint", rebuilt(header=hdr(h)), "labels.npz", "made for another skeleton")
    add("lb_samples_out_of_range", rebuilt(samples=np.array([10**6], np.int32)), "samples",
        "a sample index past the instances")
    # declared sizes: checked from the zip directory and the .npy headers before anything is loaded
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 5, 3)})
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    members["keypoints.npy"] = buf.getvalue()  # a header claiming 60 TB, no data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    add("lb_huge_claim", out.getvalue(), "keypoints", "keypoints.npy header claims (10^12, 5, 3) float32")
    out = io.BytesIO()
    big = io.BytesIO()
    np.save(big, np.zeros((200000, 5, 3), np.float32))  # 12 MB of zeros, deflated to a few kB
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            deflate = name == "keypoints.npy"
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), big.getvalue() if deflate else data,
                       compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    add("lb_compressed", out.getvalue(), "keypoints", "keypoints.npy deflated (a 12 MB array in a few kB)")
    # stored values: dtypes, ranges, finiteness
    with np.load(io.BytesIO(good), allow_pickle=False) as z:
        widths, inst_image, bbox = z["widths"], z["inst_image"], z["bbox"]
    add("lb_widths_nan", rebuilt(widths=np.where(np.arange(len(widths)) == 1, np.nan, widths)), "widths",
        "widths stored as floats with a NaN")
    add("lb_fractional_index", rebuilt(inst_image=inst_image + np.where(np.arange(len(inst_image)) == 0, 0.5, 0)),
        "inst_image", "an instance's image index 0.5")
    kp_nan = kp.copy()
    kp_nan[0, 0] = [np.nan, 5.0, 1.0]
    add("lb_keypoint_nan", rebuilt(keypoints=kp_nan), "keypoints", "a visible keypoint at x = NaN")
    bb = bbox.copy()
    bb[0, 3] = -bb[0, 3]
    add("lb_bbox_negative", rebuilt(bbox=bb), "bbox", "a box of negative height")


class _Evil:
    """Unpickling this would run eval(); torch.load(weights_only=True) must refuse it."""

    def __reduce__(self):
        return (eval, ("open('UNPICKLED', 'w').write('posedata ran code from a checkpoint')",))


def checkpoint_cases(c: Corpus) -> None:
    import torch

    good = (c.out / "base" / "train" / "good.pt").read_bytes()

    def add(name, data: bytes, where, what, cmds=CKPT_CMDS):
        c.case(name, "checkpoint", {"model.pt": data}, "model.pt", 2, where, what, cmds)

    def saved(obj) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    add("ck_empty", b"", "model.pt", "empty file")
    add("ck_truncated", good[: len(good) // 2], "model.pt", "zip cut in half")
    add("ck_text", b"this is not a checkpoint\n", "model.pt", "text named .pt")
    add("ck_evil_pickle", pickle.dumps({"state_dict": _Evil()}, protocol=2), "model.pt",
        "legacy pickle whose object calls eval() when unpickled")
    add("ck_evil_in_zip", saved({"state_dict": {}, "payload": _Evil()}), "model.pt",
        "torch zip whose data.pkl calls eval()")
    add("ck_top_list", saved([torch.zeros(2)]), "model.pt", "top level is a list")
    add("ck_state_not_tensors", saved({"state_dict": {"model.0.0.weight": "zeros"}}), "state_dict",
        "state_dict holds a string")
    sk_other = json.loads(json.dumps(torch.load(io.BytesIO(good), weights_only=True)["skeleton"]))
    del sk_other
    obj = torch.load(io.BytesIO(good), weights_only=True)
    obj["fingerprint"] = "f" * len(obj["fingerprint"])
    obj["skeleton"]["name"] = "another"
    add("ck_other_skeleton", saved(obj), "model.pt", "a posedata checkpoint for another skeleton", cmds=["val"])
    obj = torch.load(io.BytesIO(good), weights_only=True)
    obj["version"] = 1
    add("ck_relu_version", saved(obj), "ReLU", "format version 1: trained with ReLU in the CPM trunk")
    obj = torch.load(io.BytesIO(good), weights_only=True)
    obj["model"] = {"stages": "many"}
    add("ck_bad_spec", saved(obj), "model", "model spec is nonsense", cmds=["val"])
    # the archive's declared sizes, checked before torch.load
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0)), zin.read(info),
                          compress_type=zipfile.ZIP_DEFLATED)
    add("ck_compressed", out.getvalue(), "data.pkl", "every archive member deflated (torch.load would expand them)")
    # stored values, checked on load
    for name, where, change, what in (
            ("ck_skeleton_list", "skeleton", lambda o: o.update(skeleton=["center", "top_left"]), "skeleton a list"),
            ("ck_width_nan", "model.width", lambda o: o["model"].update(width=float("nan")), "width NaN"),
            ("ck_stages_fraction", "model.stages", lambda o: o["model"].update(stages=2.5), "2.5 stages"),
            ("ck_stages_huge", "model.stages", lambda o: o["model"].update(stages=100000), "100000 stages"),
            ("ck_count_string", "model.num_heatmaps", lambda o: o["model"].update(num_heatmaps="6"),
             "a string where a count belongs")):
        obj = torch.load(io.BytesIO(good), weights_only=True)
        change(obj)
        add(name, saved(obj), where, what)


def val_image_cases(c: Corpus) -> None:
    """Evaluation and inference read images too: a good checkpoint, an image that must not be decoded."""
    d = json.loads((c.out / "base" / "train" / "annotations.json").read_bytes())
    d["images"] = d["images"][:1]
    d["annotations"] = [a for a in d["annotations"] if a["image_id"] == d["images"][0]["id"]]
    for name, fn, data, (w, h), where in (
            ("val_bomb_png", "b.png", png_bomb(), (30000, 30000), "30000x30000"),
            ("val_bomb_jpeg", "b.jpg", jpeg_bomb(), (30000, 30000), "30000x30000"),
            ("val_bomb_hdr", "b.hdr", hdr_bomb(), (17000, 16000), "b.hdr")):
        dd = copy.deepcopy(d)
        dd["images"][0].update(file_name=fn, width=w, height=h)
        c.case(name, "val-images", {"data.json": jbytes(dd), f"images/{fn}": data}, "data.json", 2, where,
               f"{fn} claims {w}x{h}", VAL_IMAGE_CMDS, images="images", image=f"images/{fn}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    out = args.out
    for sub in ("base", "cases"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "manifest.json").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    c = Corpus(out)
    good = make_base(c)
    make_train_base(c)
    coco_cases(c, good)
    image_cases(c, good)
    import_cases(c)
    skeleton_cases(c)
    label_cases(c)
    checkpoint_cases(c)
    val_image_cases(c)
    c.write_manifest()
    print(f"wrote {len(c.cases)} cases to {out}")


if __name__ == "__main__":
    main()
