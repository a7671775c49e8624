"""`--device` for every torch command (train, val, infer): one resolver, one message.

`auto` is CUDA when torch has a usable GPU, else the CPU. An explicit device torch cannot use is
refused with a usage error before any work starts, rather than failing deep inside the first
forward pass.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from posedata.errors import InputError

if TYPE_CHECKING:
    import torch

CHOICES_HELP = "auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(spec: str | None = "auto", local_rank: int | None = None) -> torch.device:
    """The torch device for a `--device` value.

    local_rank (a torchrun process's LOCAL_RANK) picks the GPU of a bare `cuda` / `auto`, so each
    process of a multi-GPU run gets its own."""
    import torch

    text = (spec or "auto").strip().lower()
    m = _PATTERN.match(text)
    if m is None:
        raise InputError(f"--device {spec!r} is not one of: {CHOICES_HELP}")
    kind, index = m.group(1), m.group(2)
    if kind in ("auto", "cpu", "mps") and index is not None:
        raise InputError(f"--device {spec!r}: only cuda takes an index (cuda:N)")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError("--device mps: this torch build has no usable Apple GPU (use cpu or auto)")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise InputError(f"--device {spec}: this torch build has no usable CUDA GPU "
                         f"(torch {torch.__version__}; use --device cpu or auto)")
    n = torch.cuda.device_count()
    i = int(index) if index is not None else (local_rank or 0)
    if i >= n:
        raise InputError(f"--device {spec}: GPU {i} does not exist ({n} visible)")
    return torch.device("cuda", i)


def surely_cpu(spec: str | None) -> bool:
    """Whether a --device value means the CPU, answered without importing torch when it can be
    (True: it does; False: it may not, ask resolve_device). `cpu` does; `auto` does when torch is
    a build without CUDA and ROCm (torch/version.py's `cuda` and `hip` are None), since auto picks
    CUDA only. Why: the onnx backend on a cached graph needs no torch (trainer/onnx_cache.py), and
    importing it only to ask for a GPU was 1.3 CPU s of a one-photo job."""
    text = (spec or "auto").strip().lower()
    if text == "cpu":
        return True
    if text != "auto":
        return False
    if "torch" in sys.modules:
        return not sys.modules["torch"].cuda.is_available()
    found = importlib.util.find_spec("torch")
    if found is None or not found.submodule_search_locations:
        return False  # resolve_device says what is wrong
    try:
        text = (Path(next(iter(found.submodule_search_locations))) / "version.py").read_text(encoding="utf-8")
    except OSError:
        return False
    builds = re.findall(r"^(cuda|hip)\b[^=\n]*=\s*(.+?)\s*$", text, re.MULTILINE)
    return len(builds) == 2 and all(value == "None" for _, value in builds)
