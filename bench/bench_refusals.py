"""What a refused hostile input costs: peak memory and time of each refusal, measured in a child.

    .venv/bin/python bench/bench_refusals.py [--keep DIR]

Writes the largest inputs issue 12 measured (a 17 MB Radiance HDR claiming 17000 x 16000 pixels,
a 2.9 MB deflated label file that expands to 2.97 GB, a 2.9 MB deflated checkpoint that expands to
2.2 GB, a 741-byte YAML of nested aliases, ...) into a temporary folder, then runs the reader each
command uses on each one in a fresh child process. The child imports everything first, notes its
resident size, runs the read, which must raise posedata's InputError (or a subclass), and reports
how far its peak RSS (/proc/self/status VmHWM; getrusage's ru_maxrss would keep the parent's peak
across fork + exec) rose above that, and the wall time of the read alone
(imports the command needs anyway are done first; a reader's own lazy imports are counted).
The goal (docs/reliability.md): no refused input costs more than 100 MB or 1 s.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "badinput"))

from make_corpus import hdr_bomb, jpeg_bomb, png_bomb  # noqa: E402

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
{imports}
from posedata.errors import PosedataError
def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
before = status_kb("VmRSS")  # the read's cost is its peak above where the process stands now
t = time.perf_counter()
try:
    {call}
    outcome = "ACCEPTED"
except PosedataError as e:
    outcome = type(e).__name__ + ": " + e.message
seconds = time.perf_counter() - t
# VmHWM, not getrusage's ru_maxrss: after fork + exec, ru_maxrss keeps the parent's peak
after = status_kb("VmHWM")
print(json.dumps({{"seconds": seconds, "peak_mb": max(0, after - before) / 1024, "outcome": outcome}}))
"""


def deflated_zeros(zf: zipfile.ZipFile, name: str, prefix: bytes, nbytes: int) -> None:
    """A member of prefix + nbytes zero bytes, deflated as it is written (never held in memory)."""
    info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as f:
        f.write(prefix)
        chunk = bytes(1 << 22)
        left = nbytes
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n


def npy_header(shape: tuple, descr: str) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def make_inputs(d: Path) -> list[tuple[str, str, str, str]]:
    """(name, what, imports, call) per case; the files are written into d."""
    import io

    import torch

    (d / "hdr.hdr").write_bytes(hdr_bomb(size=17 << 20))
    (d / "png.png").write_bytes(png_bomb())
    (d / "jpeg.jpg").write_bytes(jpeg_bomb())

    with zipfile.ZipFile(d / "claim.npz", "w") as zf:  # a header claiming 10^12 x 18 x 3 float32, no data
        zf.writestr("header.npy", npy_header((0,), "|u1"))
        zf.writestr("keypoints.npy", npy_header((10**12, 18, 3), "<f4"))
    with zipfile.ZipFile(d / "deflated.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        n = 742_500_000  # float32: 2.97 GB
        deflated_zeros(zf, "keypoints.npy", npy_header((n,), "<f4"), 4 * n)

    buf = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(4)}}, buf)
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(d / "deflated.pt", "w", zipfile.ZIP_DEFLATED,
                                                            compresslevel=9) as zout:
        for info in zin.infolist():
            if info.filename.endswith("/data/0"):
                deflated_zeros(zout, info.filename, b"", 2_200_000_000)
            else:
                zout.writestr(zipfile.ZipInfo(info.filename, (1980, 1, 1, 0, 0, 0)), zin.read(info))
    sk = {"num_heatmaps": 6, "num_pafs": 8, "stages": 100000, "width": 0.25}
    torch.save({"state_dict": {"w": torch.zeros(4)}, "format": "posedata-checkpoint", "version": 2, "model": sk},
               d / "stages.pt")

    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(9):
        prev, cur = chr(97 + i).encode(), chr(98 + i).encode()
        bomb += cur + b": &" + cur + b" [" + b", ".join([b"*" + prev] * 9) + b"]\n"
    (d / "aliases.yaml").write_bytes(bomb + b"name: *j\nkeypoints: [a, b]\nlimbs: [[a, b]]\nroot: a\n")
    (d / "deep.yaml").write_bytes(b"name: " + b"[" * 100000 + b"]" * 100000 + b"\n")
    names = [f"k{i}" for i in range(5000)]
    (d / "k5000.yaml").write_text(f"name: big\nkeypoints: [{', '.join(names)}]\nlimbs: ["
                                  + ", ".join(f"[k0, {n}]" for n in names[1:]) + "]\nroot: k0\n")
    laughs = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10 if i else "lol"}">' for i in range(10))
    (d / "laughs.xml").write_text(f'<?xml version="1.0"?><!-- <annotations> {"x" * 70000} -->'
                                  f'<!DOCTYPE annotations [{laughs}]><annotations><meta/>&l9;</annotations>')

    img = "from pathlib import Path; from posedata.images import decode_image, image_header"
    return [
        ("hdr", "17 MB Radiance HDR claiming 17000 x 16000 (validate --images, preview, train, val, infer)", img,
         f"image_header(Path({str(d / 'hdr.hdr')!r}))"),
        ("hdr-decode", "the same HDR through the decoder", img, f"decode_image(Path({str(d / 'hdr.hdr')!r}))"),
        ("png", "PNG header claiming 30000 x 30000", img, f"decode_image(Path({str(d / 'png.png')!r}))"),
        ("jpeg", "JPEG header claiming 30000 x 30000", img, f"decode_image(Path({str(d / 'jpeg.jpg')!r}))"),
        ("npz-claim", ".npz member whose header claims 10^12 x 18 x 3 float32 (train, preview)",
         "from posedata.labels import load", f"load({str(d / 'claim.npz')!r})"),
        ("npz-deflated", ".npz member deflated to 2.9 MB, 2.97 GB declared",
         "from posedata.labels import load", f"load({str(d / 'deflated.npz')!r})"),
        ("pt-deflated", "checkpoint member deflated to 2.1 MB, 2.2 GB declared (train --init, val, infer)",
         "from trainer.checkpoint import load", f"load({str(d / 'deflated.pt')!r})"),
        ("pt-stages", "checkpoint spec with 100000 refinement stages",
         # val and infer import torch before they read a checkpoint; trainer.predict itself imports it lazily
         "import torch  # noqa: F401\nfrom trainer.predict import load_model", f"load_model({str(d / 'stages.pt')!r})"),
        ("yaml-aliases", "741-byte skeleton YAML of nested aliases (9^10 values)",
         "from posedata.skeleton import load", f"load({str(d / 'aliases.yaml')!r})"),
        ("yaml-deep", "skeleton YAML nested 100 000 levels", "from posedata.skeleton import load",
         f"load({str(d / 'deep.yaml')!r})"),
        ("yaml-5000", "skeleton of 5000 keypoints", "from posedata.skeleton import load",
         f"load({str(d / 'k5000.yaml')!r})"),
        ("xml-laughs", "CVAT XML: billion laughs DTD after a 70 kB comment",
         "from posedata.formats.cvat import skeleton_from_xml", f"skeleton_from_xml({str(d / 'laughs.xml')!r})"),
    ]


def measure(imports: str, call: str) -> dict:
    code = CHILD.format(root=str(ROOT), imports=imports, call=call)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return {"seconds": float("nan"), "peak_mb": float("nan"), "outcome": "CRASH " + out.stderr.strip()[-300:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="write the inputs here and keep them")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        cases = make_inputs(d)
        print("| input | file size | peak RSS added | time | refused with |")
        print("|---|---:|---:|---:|---|")
        worst_mb = worst_s = 0.0
        for _name, what, imports, call in cases:
            r = measure(imports, call)
            f = call.split("'")[1]
            worst_mb, worst_s = max(worst_mb, r["peak_mb"]), max(worst_s, r["seconds"])
            print(f"| {what} | {Path(f).stat().st_size / 1e6:.3g} MB | {r['peak_mb']:.1f} MB | {r['seconds']:.3f} s "
                  f"| {r['outcome'][:110].replace('|', '/')} |")
        print(f"\nworst: {worst_mb:.1f} MB, {worst_s:.3f} s (goal: 100 MB, 1 s)")


if __name__ == "__main__":
    main()
