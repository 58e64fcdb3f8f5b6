"""One fake clock for the rate-limit and store tests: it stands in for the ``time`` module of the
modules it is patched into (``time()`` and ``monotonic()`` both read ``now``)."""

from types import ModuleType

import pytest

BASE = 60 * 28_333_334  # a time on a minute (and window) boundary


class FakeClock:
    def __init__(self, now: float = BASE) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def patch_clock(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType, now: float = BASE) -> FakeClock:
    fake = FakeClock(now)
    for module in modules:
        monkeypatch.setattr(module, "time", fake)
    return fake
