"""Schemathesis against the shop service's own OpenAPI document (issue 9, part 3), with a valid
bearer token (an admin's, promoted out of band as ``python -m apps.shop.admin`` does) so the
authenticated routes are exercised past their 401. The login and sign-up limits are off here: with
them on, most generated requests to those routes would be a 429 before their body is validated
(tests/test_shop_abuse.py tests the limits).

Bounded so CI runs it on every change (25 examples per operation): no generated request may cause
a 5xx. ``GET /items/events`` is left out: without ``limit`` it streams until the client leaves,
which a generated request never does (the stream is tested in tests/test_shop.py).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from adv_support import bearer, promote, register, shop_settings
from hypothesis import HealthCheck, settings

from apps.shop import security
from apps.shop.main import create_app
from toolkit.security import PasswordHasher
from toolkit.testing import TestClient

# The document is read at collection, so the app (and its database file) exist from import on.
DATA_DIR = Path(tempfile.mkdtemp(prefix="toolkit-adversarial-shop-"))
atexit.register(shutil.rmtree, DATA_DIR, ignore_errors=True)  # collected but not run: still removed
SETTINGS = shop_settings(DATA_DIR, rate_limits=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SETTINGS)).exclude(path="/items/events")


@pytest.fixture(scope="module")
def admin() -> dict[str, str]:
    """An admin's bearer token, and a few items for the generated ids to find; made through a
    second app on the same database before the fuzzed one answers anything."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "hasher", PasswordHasher(n=2**4, r=1, p=1))
        with TestClient(create_app(SETTINGS)) as client:
            register(client, "admin")
            promote(DATA_DIR, "admin")
            register(client, "alice")
            headers = bearer(client, "admin")
            for n in range(1, 4):
                body = {"name": f"Item {n}", "price": n, "tags": ["a", "b"]}
                assert client.post("/items", json=body, headers=headers).status_code == 201
    return headers


def test_the_document_lists_the_authenticated_routes() -> None:
    """The fuzzing below covers what it should: every route of apps/SPEC.md but the stream."""
    operations = {(result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()}
    assert {
        ("POST", "/items"),
        ("PATCH", "/items/{item_id}"),
        ("DELETE", "/items/{item_id}"),
        ("PUT", "/items/{item_id}/image"),
        ("GET", "/users/me"),
        ("GET", "/admin/users"),
        ("GET", "/admin/audit"),
        ("POST", "/auth/token"),
        ("POST", "/auth/login"),
    } <= operations
    assert ("GET", "/items/events") not in operations


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_causes_a_server_error(case: schemathesis.Case, admin: dict[str, str]) -> None:
    response = case.call(headers=admin)
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text)


@pytest.mark.parametrize(
    "url",
    ["/items/9223372036854775808", "/items?owner_id=9223372036854775808", "/items?skip=99999999999999999999"],
)
def test_an_integer_beyond_64_bits_is_a_client_error(admin: dict[str, str], url: str) -> None:
    with TestClient(create_app(SETTINGS), raise_server_exceptions=False) as client:
        assert client.get(url, headers=admin).status_code < 500
