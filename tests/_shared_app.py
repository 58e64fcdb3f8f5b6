"""The app behind the scale-out test of caching and rate limiting: two real uvicorn processes
(``uvicorn --factory _shared_app:create_app``) sharing one Redis, configured by ``REDIS_URL`` and
``SHARED_PREFIX``. Every answer names the process that computed it, so a cache hit on the other
process shows. ``uvicorn_pair`` starts two of them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from toolkit import App, Depends
from toolkit.cache import Cache
from toolkit.ratelimit import RateLimiter
from toolkit.sessions import RedisStore


def create_app() -> App:
    store = RedisStore(url=os.environ["REDIS_URL"], prefix=os.environ["SHARED_PREFIX"])
    # Sliding over an hour: the few requests of one test fall in one window unless an hour boundary
    # passes between them (the previous window is then weighted down, which can admit one more).
    limiter = RateLimiter(store, algorithm="sliding")
    computed = 0  # how many responses this process computed itself

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        await store.close()

    app = App(cache=Cache(store), lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.get("/limited", dependencies=[Depends(limiter.limit("3/hour"))])
    async def limited() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.get("/cached/{item_id}", cache=300)
    async def cached_item(item_id: int, lang: str = "en") -> dict[str, Any]:
        nonlocal computed
        computed += 1
        return {"item_id": item_id, "lang": lang, "pid": os.getpid(), "computed": computed}

    return app


# --- two processes -----------------------------------------------------------------------------

STARTUP_TIMEOUT = 30.0


@contextlib.contextmanager
def uvicorn_pair(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[list[str]]:
    """Two uvicorn processes serving ``create_app`` on free ports; their base URLs. Always killed."""
    from redis_server import free_port

    env = {**os.environ, "REDIS_URL": redis_url, "SHARED_PREFIX": prefix, "PYTHONUNBUFFERED": "1"}
    tests_dir = Path(__file__).resolve().parent
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    logs: list[Path] = []
    try:
        for _ in range(2):  # both start at once; then wait for each
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "_shared_app:create_app", "--factory"]
            command += ["--app-dir", str(tests_dir), "--host", "127.0.0.1", "--port", str(port)]
            logs.append(tmp_path / f"uvicorn-{port}.log")
            with logs[-1].open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tests_dir.parent
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        for process, url, log_path in zip(processes, urls, logs, strict=True):
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, f"uvicorn did not start:\n{log_path.read_text()}"
                time.sleep(0.05)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
