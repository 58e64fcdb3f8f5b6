"""Helpers for tests that run a real server process."""

import subprocess


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate ``process`` and wait for it; kill it if it does not stop within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
