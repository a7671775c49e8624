"""trainer.device.resolve_device: the one `--device` resolver of train, val and infer (CPU only)."""
from __future__ import annotations

import pytest
import torch

from posedata.errors import InputError
from trainer.device import resolve_device


def test_auto_and_cpu_on_a_cpu_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_auto_prefers_cuda_and_ranks_get_their_own_gpu(monkeypatch):
    # no GPU needed: only the choice is tested, no tensor is moved
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InputError, match="GPU 2 does not exist"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec, message", [
    ("gpu", "not one of"), ("cuda:x", "not one of"), ("cpu:0", "only cuda takes an index"),
    ("cuda", "no usable CUDA GPU"), ("cuda:0", "no usable CUDA GPU"),
])
def test_bad_or_unusable_devices_are_usage_errors(monkeypatch, spec, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=message):
        resolve_device(spec)
