"""The CPU thread policy every torch command applies (train, val, infer, export onnx, the demo).

OpenMP threads that spin while waiting for each other turn a busy CPU into a trap: on the shared
2-core machine two spinning threads trained 10x slower than one (bench/README.md, "train"), and
one forward pass in `val` took 3.3-9.4 s where it took 0.008 s with passive waiting (issue 13). OMP_WAIT_POLICY is read once, when torch loads its OpenMP runtime, so the policy
must be in place before `import torch`: the trainer package applies it on import (see
trainer/__init__.py), and this module never imports torch at module level. An OMP_WAIT_POLICY the
user set wins.
"""
from __future__ import annotations

import os
import sys

WAIT_POLICY = "PASSIVE"
_requested: int | None = None  # the last explicit thread count (--threads), for ONNX Runtime too


def apply_thread_policy(threads: int | None = None) -> bool:
    """Passive OpenMP waiting (unless the user chose a policy), and `threads` intra-op threads
    when given (None: torch's default). Returns False when torch was imported before the policy
    could be set, so its waiting policy is whatever was in the environment then."""
    global _requested
    in_time = "torch" not in sys.modules or os.environ.get("OMP_WAIT_POLICY") is not None
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    _requested = threads
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return in_time


def requested_threads() -> int | None:
    """The thread count the command was given (None: each runtime's default)."""
    return _requested
