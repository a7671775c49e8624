"""trainer.stopping.Budget: which step may still start under --max-minutes (the end-to-end promise
is tests/test_train.py::test_max_minutes_is_a_promise_with_slow_validations)."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

import trainer.stopping as ST  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(ST.time, "monotonic", c)
    return c


def measured_budget(clock: Clock) -> ST.Budget:
    """A 60 s budget whose steps took 0.1 s, a validation 2 s and a save 1 s."""
    b = ST.Budget(1.0, started=0.0, checkpoint_bytes=0, val_images=4, batch_size=2)
    b.record("step", 0.1)
    b.record("validation", 2.0)
    b.record("save", 1.0)
    return b


def test_a_step_starts_only_if_a_slower_validation_and_save_still_fit(clock):
    b = measured_budget(clock)
    end_phase = b.step() + 2.0 + 1.0 + b.margin  # what the slowest costs so far need
    clock.now = 60.0 - end_phase - 0.01
    assert not b.allows_step()  # enough for the slowest so far, not for one a little slower
    clock.now = 60.0 - (b.step() + ST.Budget.SPIKE * 3.0 + b.margin) - 0.01
    assert b.allows_step()


def test_the_final_validation_needs_room_for_a_slower_one(clock):
    b = measured_budget(clock)
    clock.now = 60.0 - (3.0 + b.margin / 2) - 0.01
    assert not b.allows_validation()
    clock.now = 60.0 - (ST.Budget.SPIKE * 3.0 + b.margin / 2) - 0.01
    assert b.allows_validation()


def test_costs_are_the_slowest_measured(clock):
    b = measured_budget(clock)
    b.record("save", 0.5)
    b.record("validation", 3.0)
    assert (b.save(), b.validation()) == (1.0, 3.0)
    assert ST.Budget(None, 0.0, 0, 0, 2).allows_step()  # no budget: always
