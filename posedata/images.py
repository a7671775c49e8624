"""Image files: the only module that opens one (header, pixel limit, EXIF orientation, decoding).

Every command that looks at an image (validate --images, the importers that need sizes, preview,
flipcheck, train, val, infer) comes through here, so one rule holds everywhere: the header is
parsed first and an image whose header claims more than MAX_IMAGE_PIXELS is refused before a
byte of pixels is allocated. A format whose header posedata does not parse itself (JPEG, PNG,
BMP, GIF, WebP) or read lazily with PIL (TIFF) is refused, never handed to OpenCV to find out:
OpenCV has no header-only read, so a 17 MB Radiance HDR claiming 17000 x 16000 pixels cost
validate 28 s and 4 GB before this rule.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import InputError

# The files posedata reads as images (infer's folder listing, Label Studio's image URLs, YOLO's
# image search): exactly the formats image_header can size without decoding.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
FORMATS_READ = "JPEG, PNG, BMP, GIF, WebP and TIFF"


class DecodeBuffer(Protocol):
    """Something that lends a reusable byte buffer for a decode (augment.Scratch)."""

    def decode_buffer(self, nbytes: int) -> np.ndarray: ...


# -------------------------------------------------------------- image headers
# The size that matters is the size of the image the trainer decodes: cv2.imread(path,
# IMREAD_COLOR). OpenCV (checked on 5.0, imread and imdecode alike) rotates a JPEG, a PNG (an
# eXIf chunk, before or after the image data) and a WebP (VP8X with its EXIF flag) by the EXIF
# orientation tag; orientations 5-8 swap width and height. Labelling tools show the rotated image
# too (browsers apply EXIF orientation), so labels are in that frame. `width`/`height` are therefore
# the decoded, rotated size; `stored_width`/`stored_height` the pixel grid as stored. PIL's
# Image.size, IMREAD_UNCHANGED and IMREAD_IGNORE_ORIENTATION report the stored grid and would
# disagree with the trainer on every rotated phone photo.
@dataclass(frozen=True)
class ImageInfo:
    format: str
    stored_width: int
    stored_height: int
    orientation: int = 1  # EXIF orientation; 5..8 swap width and height when OpenCV loads the file
    truncated: bool = False

    @property
    def width(self) -> int:
        return self.stored_height if self.orientation >= 5 else self.stored_width

    @property
    def height(self) -> int:
        return self.stored_width if self.orientation >= 5 else self.stored_height

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as cv2.imread(path, IMREAD_COLOR) decodes the file."""
        return self.width, self.height


# Decoding allocates width * height * 3 bytes before reading a pixel: a few-kB file whose header
# claims 30000 x 30000 would take 2.7 GB. 2**28 pixels (16384 x 16384) is far above any photo
# a pose dataset holds; decode_image refuses the same files before decoding.
MAX_IMAGE_PIXELS = 1 << 28


def too_large(info: ImageInfo) -> str | None:
    """Why an image must not be decoded, or None."""
    if info.stored_width * info.stored_height > MAX_IMAGE_PIXELS:
        return (f"header claims {info.stored_width}x{info.stored_height} pixels "
                f"({info.stored_width * info.stored_height * 3 / 1e9:.1f} GB decoded); posedata does not decode "
                f"images over {MAX_IMAGE_PIXELS} pixels")
    return None


def image_header(path: str | os.PathLike) -> ImageInfo:
    """Size of an image as the trainer decodes it, from its header only (JPEG, PNG, BMP, GIF, WebP
    parsed here, TIFF through PIL's lazy open; no pixel is decoded). Raises InputError naming the
    file when it is unreadable, corrupt or of another format."""
    p = Path(path)
    try:
        return _image_header(p)
    except InputError as e:
        if e.file is None:
            e.file = str(p)
        raise
    except OSError as e:
        raise InputError(f"cannot read the image: {e.strerror or e}", file=str(p)) from None


def _image_header(p: Path) -> ImageInfo:
    with open(p, "rb") as f:
        head = f.read(64)
        try:
            if head[:3] == b"\xff\xd8\xff":
                return _jpeg(f, _tail(f, 4096))
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                if head[12:16] != b"IHDR" or len(head) < 24:
                    raise InputError("corrupt PNG header", file=str(p))
                w, h = struct.unpack(">II", head[16:24])
                return _checked(ImageInfo("png", w, h, _png_orientation(f), truncated=b"IEND" not in _tail(f, 64)), p)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                if len(head) < 10:
                    raise InputError("corrupt GIF header", file=str(p))
                w, h = struct.unpack("<HH", head[6:10])
                return _checked(ImageInfo("gif", w, h), p)
            if head[:2] == b"BM":
                if len(head) < 26:
                    raise InputError("corrupt BMP header", file=str(p))
                dib = struct.unpack("<I", head[14:18])[0]
                if dib == 12:
                    w, h = struct.unpack("<HH", head[18:22])
                else:
                    w, h = struct.unpack("<ii", head[18:26])
                return _checked(ImageInfo("bmp", abs(w), abs(h)), p)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _checked(_webp(head, f), p)
        except struct.error:
            raise InputError("corrupt image header", file=str(p)) from None
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(p)
    # anything else (Radiance HDR, OpenEXR, JPEG 2000, PPM, ...) OpenCV might decode, but only by
    # allocating whatever its header claims: refused unread
    kind = "an empty file" if not head else "not a readable image (unknown format or corrupt)"
    raise InputError(f"{kind}; posedata reads {FORMATS_READ} images, each sized from its header before "
                     "decoding", file=str(p))


def _tail(f: Any, n: int) -> bytes:
    pos = f.tell()
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - n))
    t = f.read(n)
    f.seek(pos)
    return t


def _checked(info: ImageInfo, p: Path) -> ImageInfo:
    if info.stored_width <= 0 or info.stored_height <= 0:
        raise InputError(f"header gives size {info.stored_width}x{info.stored_height}", file=str(p))
    return info


def _jpeg(f: Any, tail: bytes) -> ImageInfo:
    """Walk the JPEG markers up to the first SOFn; note the EXIF orientation on the way."""
    f.seek(2)
    orientation = 1
    while True:
        b = f.read(1)
        if not b:
            raise InputError("JPEG ends before its frame header (no SOF marker)")
        if b != b"\xff":
            raise InputError("corrupt JPEG: expected a marker")
        m = f.read(1)
        while m == b"\xff":
            m = f.read(1)
        if not m:
            raise InputError("JPEG ends inside a marker")
        marker = m[0]
        if marker in (0x01, *range(0xD0, 0xD8)):
            continue
        if marker == 0xD9 or marker == 0xDA:
            raise InputError("corrupt JPEG: image data before any frame header")
        seg_len = f.read(2)
        if len(seg_len) < 2:
            raise InputError("JPEG ends inside a segment header")
        length = struct.unpack(">H", seg_len)[0]
        if length < 2:
            raise InputError("corrupt JPEG: bad segment length")
        if marker in range(0xC0, 0xD0) and marker not in (0xC4, 0xC8, 0xCC):
            sof = f.read(5)
            if len(sof) < 5:
                raise InputError("JPEG ends inside its frame header")
            h, w = struct.unpack(">HH", sof[1:5])
            info = ImageInfo("jpeg", w, h, orientation, truncated=b"\xff\xd9" not in tail)
            if w <= 0 or h <= 0:
                raise InputError(f"JPEG frame header gives size {w}x{h}")
            return info
        body = f.read(length - 2)
        if len(body) < length - 2:
            raise InputError("JPEG ends inside a segment")
        if marker == 0xE1 and body[:6] == b"Exif\x00\x00" and orientation == 1:
            orientation = _exif_orientation(body[6:])


def _png_orientation(f: Any) -> int:
    """EXIF orientation of a PNG's eXIf chunk, wherever it is (OpenCV honours one after the image
    data too)."""
    return _chunk_orientation(f, png=True)


def _chunk_orientation(f: Any, png: bool) -> int:
    """Orientation from the EXIF chunk of a PNG (eXIf, chunks after the 8-byte signature, walk
    stopped at IEND) or an extended WebP (EXIF, RIFF chunks after the 12-byte header, padded to
    even sizes). Only chunk headers are read; the data of other chunks is skipped."""
    pos = 8 if png else 12
    while True:
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            return 1
        size, kind = struct.unpack(">I4s", hdr) if png else struct.unpack("<4sI", hdr)[::-1]
        if kind == (b"eXIf" if png else b"EXIF"):
            return _exif_orientation(_strip_exif_prefix(f.read(min(size, 1 << 20))))
        if png and kind == b"IEND":
            return 1
        pos += 12 + size if png else 8 + size + (size & 1)


def _strip_exif_prefix(b: bytes) -> bytes:
    # some writers keep JPEG's "Exif\0\0" in front of the TIFF header of PNG/WebP EXIF
    return b[6:] if b[:6] == b"Exif\x00\x00" else b


def _exif_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 (1 when absent or unparsable: EXIF is advisory)."""
    try:
        end = {b"II": "<", b"MM": ">"}[tiff[:2]]
        ifd = struct.unpack(end + "I", tiff[4:8])[0]
        (count,) = struct.unpack(end + "H", tiff[ifd:ifd + 2])
        for e in range(count):
            off = ifd + 2 + 12 * e
            tag, typ = struct.unpack(end + "HH", tiff[off:off + 4])
            if tag == 0x0112 and typ == 3:
                val = struct.unpack(end + "H", tiff[off + 8:off + 10])[0]
                return val if 1 <= val <= 8 else 1
    except (KeyError, struct.error):
        pass
    return 1


def _webp(head: bytes, f: Any) -> ImageInfo:
    if len(head) < 30:
        raise InputError("truncated WebP header")
    chunk = head[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        # OpenCV rotates by the EXIF chunk only when the VP8X header's EXIF flag is set
        return ImageInfo("webp", w, h, _webp_orientation(f) if head[20] & 0x08 else 1)
    if chunk == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise InputError("corrupt WebP (VP8) header")
        w, h = struct.unpack("<HH", head[26:30])
        return ImageInfo("webp", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L":
        if head[20] != 0x2F:
            raise InputError("corrupt WebP (VP8L) header")
        bits = int.from_bytes(head[21:25], "little")
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    raise InputError(f"unknown WebP chunk {chunk!r}")


def _webp_orientation(f: Any) -> int:
    """Orientation from the EXIF chunk of an extended WebP."""
    return _chunk_orientation(f, png=False)


def _tiff(p: Path) -> ImageInfo:
    """A TIFF's size and orientation from PIL, which parses the IFD and reads no pixel."""
    import warnings

    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)  # sizes are judged by too_large
            with PILImage.open(p) as im:
                if im.format != "TIFF":
                    raise InputError(f"not a TIFF although it starts like one (PIL reads it as {im.format})")
                # the IFD's own width and length: PIL's im.size is already rotated by the orientation
                w, h = int(im.tag_v2.get(256, im.size[0])), int(im.tag_v2.get(257, im.size[1]))
                orientation = im.tag_v2.get(0x0112, 1)
    except PILImage.DecompressionBombError as e:
        raise InputError(f"header claims a size over {MAX_IMAGE_PIXELS} pixels ({e})", file=str(p)) from None
    except InputError:
        raise
    except Exception as e:  # PIL's TIFF parser raises many types on damaged IFDs
        raise InputError(f"corrupt TIFF header ({type(e).__name__}: {e})", file=str(p)) from None
    # OpenCV applies a TIFF's orientation tag (and, 5.1, fails to decode 5-8 at all)
    return _checked(ImageInfo("tiff", w, h, orientation if orientation in range(1, 9) else 1), p)


# ------------------------------------------------------------------ decoding
def read_image(path: Path, reduce: int = 1) -> np.ndarray:
    """The image as OpenCV's imread gives it: BGR uint8; a missing or undecodable file is an
    InputError naming it.

    reduce 2, 4 or 8 decodes a JPEG at 1/reduce of its size (ceil of each side): libjpeg scales
    in the DCT domain, skipping much of the full-size work. Other images (and JPEGs with an EXIF
    rotation, whose partial edge blocks would land on the other side) are decoded at full size.
    make_sample(source_size=...) maps a reduced image back onto the full-size coordinates.
    """
    return decode_image(path, reduce)[0]


def decode_image(path: Path, reduce: int = 1, channels: int = 3,
                 scratch: DecodeBuffer | None = None) -> tuple[np.ndarray, int, int]:
    """read_image, plus the full-size width and height (as OpenCV orients the image) from the
    header: with reduce > 1 the returned image may be smaller than that.

    channels=4 returns BGRX (the fourth channel is filler), which make_sample warps without a
    conversion. JPEGs without an EXIF rotation are decoded by libjpeg-turbo through simplejpeg:
    the same library and settings as OpenCV's imread (islow IDCT, fancy upsampling), so the
    pixels are bit-identical (tested), but without imread's overhead: 5-40% less CPU per photo
    (bench/README.md "augment"). Anything it declines (a libjpeg warning such as a truncated
    file, a size other than the header's, a missing simplejpeg) goes to OpenCV as before. With
    scratch, a JPEG is decoded into its reusable buffer: the image is then valid only until the
    scratch's next use.
    """
    import cv2

    if not path.is_file():
        raise InputError("image file not found", file=str(path))
    try:
        info = image_header(path)
    except InputError as e:
        raise InputError(f"image file could not be decoded ({e.message})", file=str(path)) from None
    big = too_large(info)  # from the header alone, before anything is allocated
    if big is not None:
        raise InputError(big, file=str(path))
    jpeg = info.format == "jpeg" and info.orientation == 1
    r = reduce if jpeg and reduce in (2, 4, 8) else 1  # only an unrotated JPEG decodes reduced
    image = _decode_jpeg(path, r, info.width, info.height, channels, scratch) if jpeg else None
    if image is None:
        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                8: cv2.IMREAD_REDUCED_COLOR_8}[r]
        image = cv2.imread(str(path), flag)
        if image is None:
            raise InputError("image file could not be decoded (corrupt or not an image)", file=str(path))
    if channels == 4 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    return image, info.width, info.height


def _decode_jpeg(path: Path, r: int, width: int, height: int, channels: int,
                 scratch: DecodeBuffer | None) -> np.ndarray | None:
    """libjpeg-turbo's decode at 1/r (BGR or BGRX), or None where OpenCV should decode instead."""
    try:
        import simplejpeg
    except ImportError:  # pragma: no cover - a platform without its wheel: OpenCV decodes
        return None
    want_h, want_w = -(-height // r), -(-width // r)
    try:
        # strict: a libjpeg warning (say, a truncated file) is an error here, so OpenCV decodes
        # such a file exactly as before
        buffer = None if scratch is None else scratch.decode_buffer(want_h * want_w * channels)
        image = simplejpeg.decode_jpeg(path.read_bytes(), "BGRX" if channels == 4 else "BGR",
                                       min_height=want_h, min_width=want_w, strict=True, buffer=buffer)
    except (ValueError, OSError):
        return None
    # the scale factor is the smallest that reaches the minimum size: 1/r itself, unless the
    # header lied about the size; anything else is left to OpenCV
    return image if image.shape[:2] == (want_h, want_w) else None


