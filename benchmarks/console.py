"""What the runner prints while it works: log lines and one progress line, on stderr."""

from __future__ import annotations

import sys
import time

__all__ = ["BenchmarkError", "Progress", "log"]


class BenchmarkError(SystemExit):
    """Stop the run with a message (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"\nBENCHMARK ABORTED: {message}")


def log(message: str, end: str = "\n") -> None:
    print(message, file=sys.stderr, end=end, flush=True)


class Progress:
    """A progress line: rewritten in place on a terminal, else printed every ``quiet_seconds``."""

    def __init__(self, quiet_seconds: float = 15.0) -> None:
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.quiet_seconds = quiet_seconds
        self.last_print = 0.0
        self.shown = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def update(self, text: str) -> None:
        line = f"[{self.elapsed():4.0f} s] {text}"
        if self.tty:
            log(f"\r\x1b[K{line}", end="")
            self.shown = True
        elif time.perf_counter() - self.last_print >= self.quiet_seconds:
            self.last_print = time.perf_counter()
            log(line)

    def done(self, text: str) -> None:
        """A line that stays (replacing the progress line on a terminal)."""
        prefix = "\r\x1b[K" if self.tty and self.shown else ""
        self.shown = False
        self.last_print = time.perf_counter()
        log(f"{prefix}[{self.elapsed():4.0f} s] {text}")
