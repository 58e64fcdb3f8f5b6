"""The Swagger UI page, loaded in a real headless Chromium, renders the app's operations.

Nothing comes from a CDN: ``swagger-ui-dist@5`` is fetched once from the npm registry with
``npm pack`` and cached under the repository's ``.cache/`` (later runs are offline), then served
by ``StaticFiles`` from the app itself, with ``App(swagger_js_url=..., swagger_css_url=...)``
pointing at it: the self-hosted-assets setup. The app runs in a real uvicorn process.

Without Chromium (Debian's ``chromium``), or without npm and a cached copy, the tests are
skipped loudly; with ``REQUIRE_BROWSER=1`` (CI) they fail instead.
"""

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import msgspec
import pytest
from starlette.staticfiles import StaticFiles

from toolkit import App, Header, Query, Router

TESTS_DIR = Path(__file__).resolve().parent
CACHE_DIR = TESTS_DIR.parent / ".cache" / "swagger-ui-dist-5"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")
KEEP = (*ASSETS, "package.json", "LICENSE", "NOTICE")
NPM_TIMEOUT = 60.0
# Fail fast when the registry is unreachable; reuse npm's own cache when it has the package.
NPM_FLAGS = (
    "--loglevel=error",
    "--prefer-offline",
    "--fetch-retries=1",
    "--fetch-retry-mintimeout=1000",
    "--fetch-retry-maxtimeout=3000",
    "--fetch-timeout=20000",
)
STARTUP_TIMEOUT = 20.0
BROWSER_TIMEOUT = 45.0
DIST_ENV = "TOOLKIT_TEST_SWAGGER_DIST"


def unavailable(reason: str) -> None:
    """Skip loudly, or fail when ``REQUIRE_BROWSER=1`` (CI must run the real browser test)."""
    message = f"BROWSER TEST NOT RUN: {reason}"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message} (REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(message)


# --- the app the browser looks at (built in the uvicorn process by ``make_app``) ---------------


class Item(msgspec.Struct):
    name: str
    price: float


def make_app() -> App:
    """The app under test; uvicorn builds it with ``--factory``."""
    dist = os.environ[DIST_ENV]
    app = App(
        title="Browser Test Shop",
        version="3.2.1",
        description="Rendered by a real browser.",
        swagger_js_url="/assets/swagger-ui-bundle.js",
        swagger_css_url="/assets/swagger-ui.css",
        openapi_tags=[{"name": "items", "description": "Things for sale"}],
    )
    app.mount("/assets", StaticFiles(directory=dist), name="assets")
    items = Router(prefix="/items", tags=["items"])

    @items.get("/")
    async def list_items(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> list[Item]:
        """Every item, cheapest first."""
        return []

    @items.post("/", status_code=201, summary="Put an item up for sale")
    async def create_item(item: Item) -> Item:
        return item

    @items.get("/{item_id:int}")
    async def read_item(item_id: int, x_trace: Annotated[str | None, Header()] = None) -> Item:
        return Item("thing", 1.0)

    @items.delete("/{item_id:int}", status_code=204, deprecated=True)
    async def delete_item(item_id: int) -> None:
        pass

    app.include_router(items)

    @app.get("/health", include_in_schema=False)
    async def health() -> str:
        return "ok"

    # A second app mounted under a prefix: its page must load /v1/openapi.json.
    v1 = App(
        title="Mounted Inventory",
        swagger_js_url="/assets/swagger-ui-bundle.js",
        swagger_css_url="/assets/swagger-ui.css",
    )

    @v1.get("/stock/{sku}")
    async def count_stock(sku: str) -> int:
        return 0

    app.mount("/v1", v1)
    return app


# --- fixtures: the assets, the server, the browser --------------------------------------------


@functools.cache
def _swagger_dist() -> Path | str:
    """``swagger-ui-dist@5`` from the cache, or from the npm registry into the cache; or why not.

    Cached for the session, so npm is asked at most once even when it is unreachable.
    """
    if _complete(CACHE_DIR):
        return CACHE_DIR
    npm = shutil.which("npm")
    if npm is None:
        return f"npm is not installed and swagger-ui-dist is not cached in {CACHE_DIR}"
    CACHE_DIR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR.parent) as work:
        try:
            packed = subprocess.run(
                [npm, "pack", "swagger-ui-dist@5", "--pack-destination", work, *NPM_FLAGS],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"npm pack swagger-ui-dist@5 took more than {NPM_TIMEOUT}s (offline?)"
        tarballs = sorted(Path(work).glob("swagger-ui-dist-*.tgz"))
        if packed.returncode != 0 or not tarballs:
            output = " | ".join(line for line in (packed.stdout + packed.stderr).splitlines()[-4:] if line)
            return f"npm pack swagger-ui-dist@5 failed (exit {packed.returncode}; offline?): {output}"
        staging = Path(work) / "dist"
        staging.mkdir()
        wanted = {f"package/{name}" for name in KEEP}
        with tarfile.open(tarballs[-1]) as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name in wanted]
            for member in members:
                member.name = member.name.removeprefix("package/")
            archive.extractall(staging, members=members, filter="data")
        missing = [name for name in ASSETS if not (staging / name).is_file()]
        assert not missing, f"swagger-ui-dist tarball {tarballs[-1].name} lacks {missing}"
        if not _complete(CACHE_DIR):  # an interrupted copy: replace it
            shutil.rmtree(CACHE_DIR, ignore_errors=True)
        # Another run may have filled the cache meanwhile: keep whichever came first.
        with contextlib.suppress(OSError):
            staging.rename(CACHE_DIR)
    assert _complete(CACHE_DIR), f"{CACHE_DIR} is incomplete"
    return CACHE_DIR


def _complete(directory: Path) -> bool:
    return all((directory / name).is_file() and (directory / name).stat().st_size > 0 for name in ASSETS)


@pytest.fixture(scope="session")
def swagger_dist() -> Path:
    dist = _swagger_dist()
    if isinstance(dist, str):
        unavailable(dist)
    assert isinstance(dist, Path)
    return dist


@pytest.fixture(scope="session")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path is not None:
            return path
    unavailable("no chromium on PATH (Debian: apt-get install chromium)")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(swagger_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("docs-uvicorn") / "uvicorn.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "test_docs_browser:make_app",
        "--factory",
        "--app-dir",
        str(TESTS_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, DIST_ENV: str(swagger_dist), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=TESTS_DIR.parent, env=env
        )
    running = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited with {process.returncode}:\n{running.log()}")
            try:
                if httpx.get(f"{running.url}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not answer within {STARTUP_TIMEOUT}s:\n{running.log()}")
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def dump_dom(chromium: str, url: str, tmp_path: Path) -> str:
    """Load ``url`` in headless Chromium and return the DOM once the page settled."""
    profile = tmp_path / f"chromium-profile-{uuid.uuid4().hex}"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT}s:\n{exc.stderr!r}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if result.returncode != 0 or "<html" not in result.stdout:
        pytest.fail(f"chromium failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def opblocks(dom: str) -> dict[str, str]:
    """Every rendered operation block: its ``id`` (``operations-<tag>-<operationId>``) -> its kind
    (``get``, ``post``... or ``deprecated``, which Swagger UI shows instead of the method)."""
    pattern = r'<div class="opblock opblock-([a-z]+)[^"]*" id="(operations-[^"]+)"'
    return {block_id: kind for kind, block_id in re.findall(pattern, dom)}


def summary_paths(dom: str) -> list[str]:
    """The path shown on every operation (``opblock-summary-path__deprecated`` when deprecated)."""
    return re.findall(r'class="opblock-summary-path(?:__deprecated)?"[^>]*data-path="([^"]+)"', dom)


# --- the tests -----------------------------------------------------------------------------------


def test_assets_are_served_by_the_app(server: Server) -> None:
    for name in ASSETS:
        response = httpx.get(f"{server.url}/assets/{name}", timeout=10.0)
        assert response.status_code == 200, name
        assert len(response.content) > 10_000, name
    page = httpx.get(f"{server.url}/docs", timeout=10.0).text
    assert '<script src="/assets/swagger-ui-bundle.js"></script>' in page
    assert "cdn.jsdelivr.net" not in page


def test_swagger_ui_renders_the_operations(server: Server, chromium: str, tmp_path: Path) -> None:
    dom = dump_dom(chromium, f"{server.url}/docs", tmp_path)
    assert "Failed to load API definition" not in dom, dom[-3000:]
    assert 'class="swagger-ui"' in dom, f"Swagger UI did not start:\n{dom[-3000:]}"
    # The info block: title, version, description.
    assert "Browser Test Shop" in dom
    assert "3.2.1" in dom
    assert "Rendered by a real browser." in dom
    # Every operation of the document is a rendered block under its tag, and nothing else is.
    assert opblocks(dom) == {
        "operations-items-list_items_items__get": "get",
        "operations-items-create_item_items__post": "post",
        "operations-items-read_item_items__item_id__get": "get",
        "operations-items-delete_item_items__item_id__delete": "deprecated",
    }, dom[-3000:]
    assert sorted(summary_paths(dom)) == ["/items/", "/items/", "/items/{item_id}", "/items/{item_id}"]
    assert 'class="opblock-summary-path__deprecated" data-path="/items/{item_id}"' in dom
    # Summaries: from the function name, or given explicitly.
    for summary in ("List Items", "Put an item up for sale", "Read Item", "Delete Item"):
        assert summary in dom, summary
    # The tag section with its description from openapi_tags.
    assert 'data-tag="items"' in dom
    assert "Things for sale" in dom
    # The schemas section lists the shared component.
    assert "Item" in re.sub(r"<[^>]+>", " ", dom)
    assert "/health" not in dom


def test_mounted_app_docs_load_their_own_document(server: Server, chromium: str, tmp_path: Path) -> None:
    dom = dump_dom(chromium, f"{server.url}/v1/docs", tmp_path)
    assert "Failed to load API definition" not in dom, dom[-3000:]
    assert "Mounted Inventory" in dom
    assert "/v1/openapi.json" in dom  # the link under the title
    assert opblocks(dom) == {"operations-default-count_stock_stock__sku__get": "get"}, dom[-3000:]
    assert summary_paths(dom) == ["/stock/{sku}"]
    assert "Count Stock" in dom
    assert "Browser Test Shop" not in dom
