"""What a loaded network is (torch or ONNX) and how images are normalised for it: the small
shared ground of prediction (predict.py) and ONNX export (export_onnx.py), so neither imports the other's module for it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IMG_MEAN = 128.0
IMG_SCALE = 1.0 / 256.0
DEFAULT_INPUT_SIZE = 368  # the reference's base height, for files that do not record their own


@dataclass
class LoadedModel:
    """A network ready for predict/detect and what its file says about how to run it."""

    model: Any  # a torch module, or an export_onnx.OnnxModel (anything with forward_numpy)
    description: str
    skeleton: Any  # the Skeleton it runs with (given, or the one stored in the file)
    input_size: int | None  # the size it was trained at, when the file records it
    backend: str  # "torch" or "onnx"
    # a checkpoint's torch network: what predict.cache_onnx_graph needs to cache its ONNX graph
    # (path, the skeleton asked for, description, stored skeleton, the file's state when read)
    source: dict[str, Any] | None = None

    def choose_input_size(self, given: int | None) -> tuple[int, str]:
        """(input size, why): an explicit size wins, then the file's training size, then 368."""
        if given is not None:
            return given, "given"
        if self.input_size is not None:
            return int(self.input_size), "its training size"
        return DEFAULT_INPUT_SIZE, "the reference's, the file does not record one"
