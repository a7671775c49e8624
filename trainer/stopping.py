"""When a run stops before its last iteration: a signal (Ctrl-C, a cluster's SIGTERM) or the
--max-minutes budget. Both end the loop between steps, so last.pt is saved at a whole iteration."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Interrupts:
    """Ctrl-C and SIGTERM (a cluster's preemption) while training become a request: the loop ends
    after the current step and saves last.pt there. A second signal stops at once."""

    def __init__(self, on_first: Callable[[str], None]):
        self.on_first = on_first
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self.received is not None:
            previous = self._previous.get(signum)
            self.__exit__()
            if callable(previous):
                previous(signum, frame)  # what a second signal did before training started
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        self.on_first(self.received)

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class Budget:
    """--max-minutes as a promise: the run, its validations and its final checkpoint end within it.

    A step starts only when it, the checkpoint and validation it may lead to, and the final save
    all fit in what is left, each costed by its slowest measured duration so far (a shared machine
    is not steady), and the validation and saves still to come by SPIKE times that. Before a cost
    is measured it is estimated: a save from the checkpoint's size, a validation from the measured
    training speed. The first step is the one thing not costed: it is the measurement."""

    # The next save or validation can be slower than every one so far: in a 20 s run at load 4
    # saves took 0.8-1.2 s (an fsync waiting behind other jobs' writes) and the run ended 0.7 s
    # late, past the fixed margin. A quarter more covers such a stall at the cost of stopping a
    # little earlier.
    SPIKE = 1.25

    def __init__(self, minutes: float | None, started: float, checkpoint_bytes: int, val_images: int,
                 batch_size: int):
        self.deadline = started + minutes * 60 if minutes else None
        self.margin = 0.5 + 0.01 * (minutes or 0) * 60
        self.step_s: list[float] = []
        self.save_s: float | None = None
        self.val_s: float | None = None
        self.save_guess = 1.0 + checkpoint_bytes / 50e6  # + the loss plot
        self.val_images = val_images
        self.batch_size = batch_size

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def step(self) -> float:
        return max(self.step_s[-20:]) if self.step_s else 0.0

    def save(self) -> float:
        return self.save_s if self.save_s is not None else self.save_guess

    def validation(self) -> float:
        if self.val_images == 0:
            return 0.0
        if self.val_s is not None:
            return self.val_s
        # a forward pass is about a third of a training step; grouping and larger images: x3 back
        return 1.0 + self.val_images * self.step() / self.batch_size

    def allows_step(self) -> bool:
        if self.deadline is None or not self.step_s:
            return True
        return self.left() >= self.step() + self.SPIKE * (self.validation() + self.save()) + self.margin

    def allows_validation(self) -> bool:
        return self.left() >= self.SPIKE * (self.validation() + self.save()) + self.margin / 2

    def record(self, kind: str, seconds: float) -> None:
        if kind == "step":
            self.step_s.append(seconds)
        elif kind == "save":
            self.save_s = max(seconds, self.save_s or 0.0)
        elif kind == "validation":
            self.val_s = max(seconds, self.val_s or 0.0)
