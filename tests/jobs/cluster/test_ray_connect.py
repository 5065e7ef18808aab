"""Joining through Ray Client retries a session the head was too slow to start, and says so when it gives
up (the decision only: ``ray.init`` is replaced, no cluster needed)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("ray")  # the cluster fixtures make a missing Ray fail under CI

from nerf_widgets.jobs import ray_executor  # noqa: E402


class FlakyInit:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls, self.shutdowns = failures, [], 0

    def init(self, address: str, **options: Any) -> None:
        self.calls.append(address)
        if len(self.calls) <= self.failures:
            raise ConnectionAbortedError("Initialization failure from server: Starting Ray client server failed.")

    def shutdown(self) -> None:
        self.shutdowns += 1


def patched(monkeypatch: pytest.MonkeyPatch, failures: int) -> FlakyInit:
    fake = FlakyInit(failures)
    monkeypatch.setattr(ray_executor.ray, "init", fake.init)
    monkeypatch.setattr(ray_executor.ray, "shutdown", fake.shutdown)
    monkeypatch.setattr(ray_executor.ray, "is_initialized", lambda: False)
    return fake


def test_a_slow_session_start_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = patched(monkeypatch, failures=2)
    ray_executor.connect("ray://head:10001")
    assert fake.calls == ["ray://head:10001"] * 3 and fake.shutdowns == 2


def test_giving_up_names_the_address_and_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = patched(monkeypatch, failures=ray_executor.CLIENT_ATTEMPTS)
    with pytest.raises(ConnectionError, match=r"ray://head:10001 after 3 tries.*Ray Client port is reachable"):
        ray_executor.connect("ray://head:10001")
    assert len(fake.calls) == ray_executor.CLIENT_ATTEMPTS


def test_a_direct_address_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = patched(monkeypatch, failures=1)
    with pytest.raises(ConnectionAbortedError):
        ray_executor.connect("10.0.0.5:6379")
    assert fake.calls == ["10.0.0.5:6379"]
