"""Fixtures of the adversarial suite: uvicorn servers of ``adv_app`` (started once per HTTP
implementation, always killed) and the shop service on a fresh SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from adv_support import Server, uvicorn

from apps.shop import security
from toolkit.security import PasswordHasher


class Servers:
    """``adv_app`` behind uvicorn, one process per HTTP implementation, started on first use."""

    def __init__(self, log_dir: Path, stack: contextlib.ExitStack) -> None:
        self.log_dir = log_dir
        self.stack = stack
        self.running: dict[str, Server] = {}

    def __getitem__(self, http: str) -> Server:
        if http not in self.running:
            self.running[http] = self.stack.enter_context(uvicorn("adv_app:app", self.log_dir, http=http))
        return self.running[http]


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        yield Servers(tmp_path_factory.mktemp("uvicorn"), stack)


@pytest.fixture(params=["h11", "httptools"])
def server(request: pytest.FixtureRequest, servers: Servers) -> Server:
    """The same attacks through both of uvicorn's HTTP parsers (they decode differently)."""
    return servers[request.param]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shop hashes with scrypt at its real cost (~0.2 s): a tiny cost here, same format."""
    monkeypatch.setattr(security, "hasher", PasswordHasher(n=2**4, r=1, p=1))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
