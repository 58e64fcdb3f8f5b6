from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.types import ASGIApp

from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_factory() -> ClientFactory:
    """Build a ``TestClient`` for an app (one factory for every test module, as in Starlette)."""

    def factory(app: ASGIApp, **kwargs: object) -> TestClient:
        return TestClient(app, **kwargs)  # type: ignore[arg-type]

    return factory
