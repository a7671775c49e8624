from __future__ import annotations

import json
import math
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posedata.errors import InputError, OutputExistsError
from posedata.io import atomic_write_bytes, atomic_writer, claim_output, parse_json, safe_image_path


def test_atomic_write_gets_normal_permissions_and_leaves_no_temp(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    with pytest.raises(RuntimeError):
        with atomic_writer(tmp_path / "b.bin") as f:
            f.write(b"half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_claim_output_and_safe_paths(tmp_path):
    (tmp_path / "out.json").write_text("{}")
    with pytest.raises(OutputExistsError):
        claim_output(tmp_path / "out.json", "convert", force=False).__enter__()
    with claim_output(tmp_path / "out.json", "convert", force=True) as c:
        assert c.path == tmp_path / "out.json"
    (tmp_path / "imgs").mkdir()
    assert safe_image_path(tmp_path / "imgs", "a/b.jpg") == (tmp_path / "imgs" / "a" / "b.jpg").resolve()
    for bad in ("../x.jpg", "/etc/passwd", "a/../../x.jpg"):
        with pytest.raises(InputError):
            safe_image_path(tmp_path / "imgs", bad)
    os.symlink("/etc", tmp_path / "imgs" / "link")
    with pytest.raises(InputError):
        safe_image_path(tmp_path / "imgs", "link/passwd")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=5),
    max_leaves=30)


def _same(a, b) -> bool:
    # json values compared exactly: types too (1 vs 1.0 vs True), NaN equal to NaN, -0.0 apart from 0.0
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(value=_json_values, ensure_ascii=st.booleans(), bom=st.booleans())
def test_parse_json_gives_json_loads_values(value, ensure_ascii, bom):
    # the fast parser must never change a value: same ints (any size), floats, key order, NaN/Infinity
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        with pytest.raises(InputError, match="not UTF-8"):
            parse_json(data, "x.json")
        return
    assert _same(parse_json(data, "x.json"), expected)


@pytest.mark.parametrize("raw, message", [(b'{"a": [1, 2', "line 1 column 12"), (b"[1,]", "line 1"),
                                          (b"\xff\xfe[]", "not UTF-8"), (b"[" * 100000 + b"]" * 100000, "nested too deeply")])
def test_parse_json_errors_are_json_s_located_errors(raw, message):
    with pytest.raises(InputError) as e:
        parse_json(raw, "bad.json")
    assert e.value.file == "bad.json" and message in str(e.value)


# ------------------------------------------------------------------ bounded YAML
def alias_bomb(levels: int = 9) -> bytes:
    """Each level repeats the previous one nine times: 9**levels values from a few hundred bytes."""
    out = b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(levels):
        prev, cur = chr(97 + i).encode(), chr(98 + i).encode()
        out += cur + b": &" + cur + b" [" + b", ".join([b"*" + prev] * 9) + b"]\n"
    return out


def test_yaml_alias_expansion_is_bounded(tmp_path):
    from posedata.io import MAX_YAML_NODES, load_yaml

    p = tmp_path / "bomb.yaml"
    p.write_bytes(alias_bomb() + b"name: *j\n")  # a skeleton's name: str() of it ran forever
    assert p.stat().st_size < 1000
    with pytest.raises(InputError, match=f"more than {MAX_YAML_NODES} values") as e:
        load_yaml(p)
    assert e.value.file == str(p) and e.value.where.startswith("line ")
    small = tmp_path / "ok.yaml"
    small.write_bytes(b"base: &b {x: 1, y: [1, 2]}\nother: *b\n")  # aliases themselves are fine
    assert load_yaml(small) == {"base": {"x": 1, "y": [1, 2]}, "other": {"x": 1, "y": [1, 2]}}


def test_yaml_depth_and_size_are_bounded(tmp_path):
    from posedata.io import MAX_YAML_BYTES, MAX_YAML_DEPTH, load_yaml

    deep = tmp_path / "deep.yaml"
    for depth in (MAX_YAML_DEPTH + 1, 100_000):  # 100 000 gave a RecursionError traceback
        deep.write_text("k: " + "[" * depth + "]" * depth + "\n")
        with pytest.raises(InputError, match="nest") as e:  # libyaml itself stops at 1000 levels
            load_yaml(deep)
        assert e.value.file == str(deep) and e.value.where.startswith("line 1 column")
    ok = tmp_path / "ok.yaml"
    ok.write_text("k: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n")  # the mapping is a level
    assert load_yaml(ok)["k"] is not None
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_YAML_BYTES + b"\nk: 1\n")
    with pytest.raises(InputError, match="at most"):
        load_yaml(big)


def test_claim_release_removes_temps_an_interrupt_stranded(tmp_path):
    """An interrupt landing between a temp's creation and the try-block that would remove it (the
    SIGTERM soak hit this window once): the claim sweeps its output's own temp names on release,
    and leaves everything else beside it alone."""
    import tempfile

    from posedata.errors import Interrupted
    from posedata.io import staging_dir

    (tmp_path / ".ds.notes.tmp").write_text("not a name posedata makes")
    (tmp_path / "ds.txt").write_text("a neighbour")
    with pytest.raises(Interrupted):
        with claim_output(tmp_path / "ds", "synth", folder=True):
            staging_dir(tmp_path / "ds", "synth")  # made, but never handed to a try-block
            tempfile.mkstemp(prefix=".ds.", suffix=".tmp", dir=tmp_path)
            raise Interrupted(15)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.notes.tmp", "ds.txt"]


def test_staged_dir_appears_whole_or_not_at_all(tmp_path):
    """synth and export yolo build their folder aside: on success it is in place with the marker;
    on an error nothing is left, and an OSError is a located write error (exit 2)."""
    from posedata import io as pio
    from posedata.errors import OutputWriteError

    out = tmp_path / "out"
    with pio.staged_dir(out, "synth") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a" and (out / pio.MARKER).is_file()
    for error, expect in ((ValueError("bug"), ValueError), (PermissionError(13, "Permission denied", "x"), OutputWriteError)):
        with pytest.raises(expect):
            with pio.staged_dir(tmp_path / "other", "synth") as tmp:
                (tmp / "half.txt").write_text("half")
                raise error
        assert not (tmp_path / "other").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _resident_pages(path) -> int:
    """How many of a file's pages are in the page cache (mincore on a mapping of it)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value)
        vec = ctypes.create_string_buffer((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE)
        try:
            assert libc.mincore(addr, size, vec) == 0
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vec.raw)


@pytest.fixture
def drops_pages(tmp_path):
    """Skip where the file system keeps a written file's pages whatever it is told (tmpfs)."""
    if not hasattr(os, "posix_fadvise"):
        pytest.skip("no posix_fadvise on this system")
    probe = tmp_path / "probe"
    with open(probe, "wb") as f:
        f.write(b"x" * (1 << 20))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    if _resident_pages(probe):
        pytest.skip("this file system keeps written pages in memory")
    probe.unlink()


def test_label_file_is_written_through_a_few_chunks_of_page_cache(tmp_path, monkeypatch, drops_pages):
    """The label file (hundreds of MB for a COCO-train-sized source) leaves the page cache chunk by
    chunk as it reaches the disk, so the write does not first-touch a page cache the size of the
    file (bench/README.md, "convert": 0.7-0.95 s of system time at 300k annotations on the bench
    VM); at most two chunks are cached at any time, and none once it is in place."""
    import numpy as np
    from test_labels import make_labels

    from posedata import labels as L
    from posedata import memory as pio

    chunk = 256 << 10
    monkeypatch.setattr(pio, "STREAM_CHUNK", chunk)
    seen = []
    real = pio.drop_cache

    def spy(fd, offset, size):
        real(fd, offset, size)
        seen.append(_resident_pages(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(pio, "drop_cache", spy)
    src = np.random.default_rng(0).integers(0, 255, 8 << 20, dtype=np.uint8).tobytes()
    L.save(make_labels(), tmp_path / "l.npz", source=src)
    assert _resident_pages(tmp_path / "l.npz") == 0
    assert len(seen) > 10 and max(seen) * 4096 <= 2 * chunk + 8192, seen
    assert L.load_embedded_source(tmp_path / "l.npz") == src


def test_streamed_write_errors_leave_nothing(tmp_path, monkeypatch):
    """An I/O error the early writeback reports is the write's error (the kernel would not report it
    again at the fsync): exit-2 write error, no output, no temp file. A file system that does not
    do early writeback gets a plain write."""
    import ctypes
    import errno

    from posedata import memory as pio
    from posedata.errors import OutputWriteError

    monkeypatch.setattr(pio, "STREAM_CHUNK", 4096)

    def failing(code):
        def sync_file_range(fd, offset, size, flags):
            ctypes.set_errno(code)
            return -1
        return lambda: sync_file_range

    monkeypatch.setattr(pio, "_sync_file_range", failing(errno.EIO))
    with pytest.raises(OutputWriteError, match="Input/output error"):
        with atomic_writer(tmp_path / "out.bin", stream=True) as f:
            f.write(b"z" * 20000)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(pio, "_sync_file_range", failing(errno.EINVAL))
    with atomic_writer(tmp_path / "out.bin", stream=True) as f:
        f.write(b"z" * 20000)
        f.seek(3)
        f.write(b"ab")
        f.seek(0, 2)
        f.write(memoryview(b"tail"))
    assert (tmp_path / "out.bin").read_bytes() == b"zzzab" + b"z" * 19995 + b"tail"
    with pytest.raises(RuntimeError):
        with atomic_writer(tmp_path / "out2.bin", stream=True) as f:
            f.write(b"half" * 10000)
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
