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


def apply_thread_policy(threads: int | None = None, torch_threads: bool = True) -> bool:
    """Passive OpenMP waiting (unless the user chose a policy), and `threads` intra-op threads
    when given (None: torch's default; torch_threads False: recorded for ONNX Runtime only, so
    that a job that may not need torch does not import it to set them). Returns False when torch
    was imported before the policy could be set, so its waiting policy is whatever was in the
    environment then."""
    global _requested
    in_time = "torch" not in sys.modules or os.environ.get("OMP_WAIT_POLICY") is not None
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    _requested = threads
    if threads is not None and torch_threads:
        import torch

        torch.set_num_threads(threads)
    return in_time


def requested_threads() -> int | None:
    """The thread count the command was given (None: each runtime's default)."""
    return _requested


def onnx_threads() -> int | None:
    """ONNX Runtime's intra-op threads: --threads when given; 1 when the machine is already busy
    (1-minute load average at least the CPU count); else None, its default (one per core).

    Why: each operator waits for its slowest thread, and on 2 busy cores one of two threads is
    often descheduled. At load 4-5 on the 2-core machine, 1 thread ran the width-1.0 network in
    0.52-0.60 s wall (0.39-0.40 CPU s) per 368 x 552 input against 0.79-0.88 s (0.48 CPU s) with 2
    and torch's 0.77 s (0.47); on a quiet machine 2 threads were faster (bench/README.md, "infer").
    The load average is read once, when the session is made."""
    if _requested is not None:
        return _requested
    try:
        busy = os.getloadavg()[0] >= (os.cpu_count() or 1)
    except OSError:  # no load average on this platform: the runtime's default
        return None
    return 1 if busy else None
