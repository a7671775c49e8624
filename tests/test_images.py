"""posedata.images: header sizes as OpenCV decodes them (EXIF orientation), the pixel limit before
any decode, and the decoders (libjpeg-turbo path bit-identical to cv2.imread)."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_files import exif_jpeg, photo, png_with_exif, webp_with_exif

from posedata.errors import InputError
from posedata.images import decode_image, image_header


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tiff"])
def test_image_header_matches_opencv(tmp_path: Path, ext: str):
    img = np.zeros((37, 53, 3), np.uint8)
    p = tmp_path / f"x{ext}"
    assert cv2.imwrite(str(p), img)
    info = image_header(p)
    assert (info.width, info.height) == (53, 37)
    assert not info.truncated


def test_image_header_webp_lossless_and_gif(tmp_path: Path):
    p = tmp_path / "l.webp"
    assert cv2.imwrite(str(p), np.zeros((21, 300, 3), np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert (image_header(p).width, image_header(p).height) == (300, 21)
    g = tmp_path / "x.gif"
    g.write_bytes(b"GIF89a" + struct.pack("<HH", 77, 12) + b"\x00" * 20)
    assert (image_header(g).width, image_header(g).height) == (77, 12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_size_is_what_cv2_imread_decodes(tmp_path: Path, orientation: int):
    img = np.zeros((30, 70, 3), np.uint8)
    p = tmp_path / "o.jpg"
    p.write_bytes(exif_jpeg(img, orientation))
    info = image_header(p)
    decoded = cv2.imread(str(p), cv2.IMREAD_COLOR)
    assert info.size == (decoded.shape[1], decoded.shape[0])  # the image the trainer sees
    assert (info.stored_width, info.stored_height, info.orientation) == (70, 30, orientation)
    assert info.size == ((30, 70) if orientation >= 5 else (70, 30))


@pytest.mark.parametrize("kind", ["png-before-idat", "png-after-idat-le", "webp-flag", "webp-no-flag"])
def test_png_and_webp_exif_orientation_agree_with_cv2_imread(tmp_path: Path, kind: str):
    img = np.zeros((30, 70, 3), np.uint8)
    if kind.startswith("png"):
        p = tmp_path / "o.png"
        p.write_bytes(png_with_exif(img, 6, after_idat="after" in kind, endian="<" if kind.endswith("le") else ">"))
    else:
        p = tmp_path / "o.webp"
        p.write_bytes(webp_with_exif(img, 6, flag=kind == "webp-flag"))
    decoded = cv2.imread(str(p), cv2.IMREAD_COLOR)
    assert image_header(p).size == (decoded.shape[1], decoded.shape[0])
    assert image_header(p).size == ((70, 30) if kind == "webp-no-flag" else (30, 70))


def test_image_header_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0\x00")  # a JPEG that ends inside its first segment
    with pytest.raises(InputError) as e:
        image_header(bad)
    assert e.value.file == str(bad)
    with pytest.raises(InputError) as e:
        image_header(tmp_path)  # a folder: the OSError becomes a located InputError
    assert e.value.file == str(tmp_path)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["jpeg", "png", "webp"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
def test_image_header_on_damaged_files_gives_a_size_or_a_located_error(tmp_path_factory, kind, cut, flips):
    img = np.zeros((30, 70, 3), np.uint8)
    raw = bytearray({"jpeg": lambda: exif_jpeg(img, 6), "png": lambda: png_with_exif(img, 6, after_idat=False),
                     "webp": lambda: webp_with_exif(img, 6, flag=True)}[kind]())
    for at, value in flips:  # damage anywhere, headers and EXIF included
        raw[int(at * (len(raw) - 1))] = value
    p = tmp_path_factory.mktemp("dmg") / f"x.{kind}"
    p.write_bytes(bytes(raw[: max(1, int(cut * len(raw)))]))
    try:
        info = image_header(p)
    except InputError as e:
        assert e.file == str(p)
        return
    assert info.width > 0 and info.height > 0 and 1 <= info.orientation <= 8


JPEG_VARIANTS = {
    "420": [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420],
    "422": [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422],
    "444": [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
    "progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
    "restart": [cv2.IMWRITE_JPEG_RST_INTERVAL, 2],
}


@pytest.mark.parametrize("variant", [*JPEG_VARIANTS, "gray"])
def test_jpeg_decode_is_opencvs(tmp_path, variant):
    """decode_image's libjpeg-turbo path gives OpenCV's imread pixels bit for bit, at full size and
    at 1/2, 1/4, 1/8, as BGR and as BGRX, into a fresh array or a reused scratch buffer."""
    from posedata.augment import Scratch

    img = photo(237, 311, seed=5)  # odd sizes: partial blocks and chroma samples at the edges
    if variant == "gray":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    p = tmp_path / "x.jpg"
    cv2.imwrite(str(p), img, [cv2.IMWRITE_JPEG_QUALITY, 90] + JPEG_VARIANTS.get(variant, []))
    scratch = Scratch()
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}
    for r, flag in flags.items():
        want = cv2.imread(str(p), flag)
        got, w, h = decode_image(p, r)
        assert (w, h) == (311, 237)
        np.testing.assert_array_equal(got, want)
        four, _, _ = decode_image(p, r, channels=4, scratch=scratch)
        assert four.shape == want.shape[:2] + (4,)
        np.testing.assert_array_equal(four[..., :3], want)


def test_jpeg_decode_falls_back_to_opencv(tmp_path):
    """A truncated JPEG (libjpeg warns: simplejpeg refuses it, OpenCV decodes what is there) and a
    CMYK JPEG give OpenCV's pixels."""
    from PIL import Image

    img = photo(120, 160, seed=2)
    ok, enc = cv2.imencode(".jpg", img)
    (tmp_path / "cut.jpg").write_bytes(enc.tobytes()[: len(enc) * 2 // 3])
    Image.fromarray(img[..., ::-1]).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name in ("cut.jpg", "cmyk.jpg"):
        want = cv2.imread(str(tmp_path / name), cv2.IMREAD_COLOR)
        assert want is not None
        got, _, _ = decode_image(tmp_path / name)
        np.testing.assert_array_equal(got, want)
        four, _, _ = decode_image(tmp_path / name, channels=4)
        np.testing.assert_array_equal(four[..., :3], want)


# ------------------------------------------------ formats whose header posedata does not read
def hdr_header(width: int, height: int) -> bytes:
    """A Radiance HDR header (what OpenCV's HDR decoder reads to size its float image)."""
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (height, width)


@pytest.mark.parametrize("ext", [".hdr", ".ppm", ".pfm", ".exr"])
def test_formats_without_a_header_parser_are_refused_unread(tmp_path: Path, monkeypatch, ext: str):
    """A format OpenCV decodes but posedata cannot size from its header (a Radiance HDR claiming
    17000 x 16000 cost validate 28 s and 4 GB) is refused without OpenCV or PIL ever opening it."""
    p = tmp_path / f"x{ext}"
    if ext == ".hdr":
        p.write_bytes(hdr_header(53, 37) + b"\x02\x02\x00\x35" + b"\x00" * 4000)
    elif ext == ".exr":
        p.write_bytes(b"\x76\x2f\x31\x01" + b"\x00" * 200)
    else:
        ok = cv2.imwrite(str(p), np.zeros((37, 53, 3), np.uint8 if ext == ".ppm" else np.float32))
        assert ok and cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is not None  # OpenCV would decode it

    def never(*a, **k):
        raise AssertionError("a decoder was asked to open a file whose header posedata does not read")

    import PIL.Image

    monkeypatch.setattr(cv2, "imread", never)
    monkeypatch.setattr(PIL.Image, "open", never)
    for read in (image_header, decode_image):
        with pytest.raises(InputError) as e:
            read(p)
        assert e.value.file == str(p) and "posedata reads JPEG, PNG, BMP, GIF, WebP and TIFF" in e.value.message


def test_tiff_sized_from_pil_header_with_orientation(tmp_path: Path):
    from PIL import Image

    im = Image.fromarray(np.zeros((30, 70, 3), np.uint8))
    for o in (1, 3, 6):
        ex = im.getexif()
        ex[0x0112] = o
        im.save(tmp_path / f"o{o}.tif", exif=ex)
        info = image_header(tmp_path / f"o{o}.tif")
        assert (info.format, info.stored_width, info.stored_height, info.orientation) == ("tiff", 70, 30, o)
        if o < 5:  # OpenCV 5.1 decodes 1-4 (and fails on 5-8); the size is the decoded one
            d = cv2.imread(str(tmp_path / f"o{o}.tif"), cv2.IMREAD_COLOR)
            assert info.size == (d.shape[1], d.shape[0])
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + struct.pack("<I", 9999) + b"\x00" * 10)
    with pytest.raises(InputError) as e:
        image_header(tmp_path / "bad.tif")
    assert e.value.file == str(tmp_path / "bad.tif")
