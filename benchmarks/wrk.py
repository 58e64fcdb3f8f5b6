"""Drive ``wrk``: one small Lua script per request, and its ``done()`` statistics as JSON.

The script sets the method, headers and body of one spec case (wrk adds ``Host`` and, for a
body, ``Content-Length``), and its ``done()`` callback prints one line, ``WRK_RESULT {...}``,
with the request count, the duration, the latency percentiles and every kind of error (wrk
counts a response outside 2xx/3xx as a ``status`` error).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .spec import Case

__all__ = ["cpu_prefix", "lua_script", "run_wrk", "wrk_version"]

_MARKER = "WRK_RESULT "
_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, "errors": {"connect": %.0f,'
    .. ' "read": %.0f, "write": %.0f, "status": %.0f, "timeout": %.0f}, "latency_us":'
    .. ' {"p50": %.1f, "p90": %.1f, "p99": %.1f, "mean": %.1f, "max": %.1f}}\n',
    "MARKER", summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
""".replace("MARKER", _MARKER)
# The request's own headers that wrk sets itself.
_WRK_SETS = {"host", "content-length"}


def _lua_string(text: str) -> str:
    """``text`` as a Lua long-bracket literal (no escapes needed inside)."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def lua_script(case: Case) -> str:
    """The wrk script sending ``case`` (with its cookie already added, if it needs one)."""
    lines = [f"wrk.method = {_lua_string(case.method)}"]
    for name, value in case.headers:
        if name.lower() not in _WRK_SETS:
            lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    if case.body:
        lines.append(f"wrk.body = {_lua_string(case.body.decode('utf-8'))}")
    return "\n".join(lines) + "\n" + _DONE


def cpu_prefix(cpu: int | None) -> list[str]:
    """``taskset -c CPU`` when pinning is asked for and possible, else nothing."""
    if cpu is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0].split(" Copyright")[0].strip() if text else "wrk"


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    cpu: int | None = None,
) -> dict[str, Any]:
    """One wrk run; the statistics its ``done()`` printed, plus requests per second."""
    command = [
        *cpu_prefix(cpu),
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        os.fspath(script),
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    for line in result.stdout.splitlines():
        if line.startswith(_MARKER):
            stats: dict[str, Any] = json.loads(line[len(_MARKER) :])
            stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6) if stats["duration_us"] else 0.0
            stats["error_count"] = sum(stats["errors"].values())
            if not stats["requests"]:
                # A run with no answer at all (a server stalled by the load) measured nothing:
                # an error, so that its cell is never read as a figure.
                stats["errors"]["no_responses"] = 1
                stats["error_count"] += 1
            return stats
    raise RuntimeError(f"wrk gave no statistics (exit {result.returncode}): {result.stdout}{result.stderr}")
