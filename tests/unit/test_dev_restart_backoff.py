"""`shopstream dev` starts a killed or halted worker again, backing off when it keeps failing."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from shopstream.dev import runtime
from shopstream.dev.runtime import Stack


class _Dead:
    pid = 1


def _stack(monkeypatch: pytest.MonkeyPatch, clock: list[float], started: list[float]) -> Stack:
    stack = Stack(env={})
    stack.children["worker-orders"] = _Dead()  # type: ignore[assignment]
    stack.argv["worker-orders"] = ("worker", "orders")
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(runtime, "signal_group", lambda *_: None)

    def spawn(name: str, *args: Any) -> None:
        started.append(clock[0])
        stack.children[name] = _Dead()  # type: ignore[assignment]

    monkeypatch.setattr(stack, "spawn", spawn)
    return stack


def test_a_worker_that_keeps_halting_is_started_again_after_growing_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, started = [1000.0], []
    stack = _stack(monkeypatch, clock, started)
    while clock[0] < 1100:  # it halts (exit 76) as soon as it starts; dev's loop looks every 0.5 s
        assert stack.restart_killed_worker("worker-orders", 76)
        clock[0] += 0.5
    gaps = [b - a for a, b in pairwise(started)]
    assert started[0] == 1000.0  # the first restart is at once
    # dev's loop sees each new process dead 0.5 s after its start, then waits 1, 2, 4 … 30 s
    assert gaps[:5] == [1.5, 2.5, 4.5, 8.5, 16.5]
    assert max(gaps) == 30.5


def test_a_minute_of_health_resets_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, started = [0.0], []
    stack = _stack(monkeypatch, clock, started)
    stack.restart_killed_worker("worker-orders", -9)
    clock[0] = 0.5
    stack.restart_killed_worker("worker-orders", -9)  # due at 1.5
    clock[0] = 1.5
    stack.restart_killed_worker("worker-orders", -9)
    clock[0] = 100.0  # ran a minute and more
    stack.restart_killed_worker("worker-orders", -9)
    assert started == [0.0, 1.5, 100.0]


def test_other_exits_are_not_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _stack(monkeypatch, [0.0], [])
    assert not stack.restart_killed_worker("worker-orders", 1)
    assert not stack.restart_killed_worker("api", -9)
