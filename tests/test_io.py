from __future__ import annotations

import os
import stat

import pytest

from posedata.errors import InputError, OutputExistsError
from posedata.io import atomic_write_bytes, atomic_writer, check_output, safe_image_path


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


def test_check_output_and_safe_paths(tmp_path):
    (tmp_path / "out.json").write_text("{}")
    with pytest.raises(OutputExistsError):
        check_output(tmp_path / "out.json", force=False)
    assert check_output(tmp_path / "out.json", force=True) == tmp_path / "out.json"
    (tmp_path / "imgs").mkdir()
    assert safe_image_path(tmp_path / "imgs", "a/b.jpg") == (tmp_path / "imgs" / "a" / "b.jpg").resolve()
    for bad in ("../x.jpg", "/etc/passwd", "a/../../x.jpg"):
        with pytest.raises(InputError):
            safe_image_path(tmp_path / "imgs", bad)
    os.symlink("/etc", tmp_path / "imgs" / "link")
    with pytest.raises(InputError):
        safe_image_path(tmp_path / "imgs", "link/passwd")
