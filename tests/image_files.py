"""Image files made in code for the image tests: a synthetic photo and files carrying EXIF
orientation the way cameras and phones write it."""
from __future__ import annotations

import struct

import cv2
import numpy as np


def photo(h: int = 300, w: int = 420, seed: int = 0) -> np.ndarray:
    """A smooth synthetic BGR image with some structure (so a wrong warp shows)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx * 255 / w, yy * 255 / h, 127 + 100 * np.sin(xx / 17) * np.cos(yy / 23)], axis=2)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        x, y = rng.integers(0, w - 40), rng.integers(0, h - 40)
        img[y:y + 30, x:x + 30] = rng.integers(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def exif_jpeg(img: np.ndarray, orientation: int) -> bytes:
    """A JPEG with an APP1 Exif segment holding one IFD0 entry: orientation."""
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    body = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    raw = buf.tobytes()
    return raw[:2] + app1 + raw[2:]


def png_with_exif(img: np.ndarray, orientation: int, after_idat: bool, endian: str = ">") -> bytes:
    import zlib

    ok, buf = cv2.imencode(".png", img)
    assert ok
    raw = buf.tobytes()
    tiff = (b"MM" if endian == ">" else b"II") + struct.pack(endian + "HI", 42, 8) + struct.pack(endian + "H", 1)
    tiff += struct.pack(endian + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(endian + "I", 0)
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    at = raw.rindex(b"IEND") - 4 if after_idat else 33  # before IEND, or right after IHDR
    return raw[:at] + chunk + raw[at:]


def webp_with_exif(img: np.ndarray, orientation: int, flag: bool) -> bytes:
    """An extended WebP: VP8X header (EXIF flag on or off), the image chunk, an EXIF chunk."""
    ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 90])
    assert ok
    h, w = img.shape[:2]
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0" * 4
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x08 if flag else 0, 0, 0, 0])
    vp8x += (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + buf.tobytes()[12:] + b"EXIF" + struct.pack("<I", len(tiff)) + tiff
    return b"RIFF" + struct.pack("<I", len(body)) + body
