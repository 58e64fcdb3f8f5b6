"""Rate limits under attack: who a client is behind proxies (every ``X-Forwarded-For`` line,
``Forwarded``, ports, garbage), IPv6 hosts owning a /64, retrying clients, and a real uvicorn.

Also the app of the uvicorn test (``uvicorn --factory test_ratelimit_abuse:create_app``), configured
by ``ABUSE_REDIS_URL`` and ``ABUSE_PREFIX``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import anyio
import httpx
import pytest
from fake_clock import BASE, FakeClock, patch_clock
from processes import stop_process
from starlette.requests import Request

import toolkit.ratelimit as ratelimit_module
import toolkit.sessions._memory as memory_module
from toolkit import App, Depends, HTTPException
from toolkit.ratelimit import RateLimiter
from toolkit.sessions import CounterStore, MemoryStore, RedisStore

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return patch_clock(monkeypatch, ratelimit_module, memory_module)


def limited_app(limiter: RateLimiter, rate: str) -> App:
    store = limiter.store

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        closer = getattr(store, "close", None)
        if closer is not None:  # a Redis client belongs to the event loop that used it
            await closer()

    app = App(lifespan=lifespan)

    @app.get("/r", dependencies=[Depends(limiter.limit(rate))])
    async def route() -> None:
        return None

    return app


async def close(store: CounterStore) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        await closer()


Headers = Sequence[tuple[str, str]]


async def statuses_from(app: App, peer: str, headers: Sequence[Headers]) -> list[int]:
    """One request per header list, each from the peer address ``peer``."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [(await client.get("/r", headers=list(h))).status_code for h in headers]


async def statuses_of_peers(app: App, peers: Sequence[str]) -> list[int]:
    return [(await statuses_from(app, peer, [()]))[0] for peer in peers]


def address(limiter: RateLimiter, peer: str, *headers: tuple[str, str]) -> str:
    raw = [(name.lower().encode(), value.encode("latin-1")) for name, value in headers]
    return limiter.client_address(Request({"type": "http", "headers": raw, "client": (peer, 1234)}))


def key(limiter: RateLimiter, peer: str, *headers: tuple[str, str]) -> str:
    raw = [(name.lower().encode(), value.encode("latin-1")) for name, value in headers]
    return limiter.client_key(Request({"type": "http", "headers": raw, "client": (peer, 1234)}))


LIMITED_THRICE = [200, 200, 200, 429, 429, 429]


# --- 1. behind a trusted proxy: every X-Forwarded-For line --------------------------------------


@pytest.mark.anyio
async def test_a_second_forwarded_for_line_does_not_let_a_client_choose_its_bucket(
    store: CounterStore,
) -> None:
    """HAProxy ``option forwardfor`` adds its own line: the client's line comes first, whatever it says."""
    app = limited_app(RateLimiter(store, trusted_proxies=["10.0.0.0/8"]), "3/hour")
    requests = [
        [("X-Forwarded-For", f"198.51.100.{i}"), ("X-Forwarded-For", "203.0.113.7")] for i in range(6)
    ]
    try:
        assert await statuses_from(app, "10.0.0.1", requests) == LIMITED_THRICE
        # Another client behind the same proxy has a budget of its own.
        other = [[("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.8")]]
        assert await statuses_from(app, "10.0.0.1", other) == [200]
    finally:
        await close(store)


def test_every_line_is_one_list_read_from_the_right() -> None:
    limiter = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8", "192.0.2.1"])
    xff = "X-Forwarded-For"
    assert address(limiter, "10.1.2.3", (xff, "198.51.100.9"), (xff, "203.0.113.7")) == "203.0.113.7"
    # Proxies appending to the last line or adding lines of their own: the same list.
    chain = [(xff, "1.1.1.1, 198.51.100.9"), (xff, "203.0.113.7, 192.0.2.1"), (xff, "10.0.0.9")]
    assert address(limiter, "10.1.2.3", *chain) == "203.0.113.7"
    # A header line the client sends empty, or a second proxy's own line, changes nothing.
    assert address(limiter, "10.1.2.3", (xff, ""), (xff, "203.0.113.7")) == "203.0.113.7"
    # Every hop trusted: the left-most (uvicorn's choice); no header: the proxy itself.
    assert address(limiter, "10.1.2.3", (xff, "10.0.0.5"), (xff, "10.0.0.6")) == "10.0.0.5"
    assert address(limiter, "10.1.2.3") == "10.1.2.3"
    # A dual-stack socket reports an IPv4 proxy as IPv4-mapped IPv6; trusted all the same.
    assert address(limiter, "::ffff:10.1.2.3", (xff, "203.0.113.7")) == "203.0.113.7"
    mapped = RateLimiter(MemoryStore(), trusted_proxies=["::ffff:10.0.0.0/104"])
    assert address(mapped, "10.1.2.3", (xff, "203.0.113.7")) == "203.0.113.7"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "hops",
    [
        [f"203.0.113.7:{port}" for port in range(40000, 40006)],  # the client chooses its source port
        [f"[2001:db8::1]:{port}" for port in range(40000, 40006)],
        [
            "::ffff:203.0.113.7",
            "203.0.113.7",
            "::ffff:cb00:7107",
            "[::ffff:203.0.113.7]:1",
            "203.0.113.7:80",
            "::FFFF:203.0.113.7",
        ],
    ],
    ids=["ipv4-port", "ipv6-port", "mapped"],
)
async def test_a_port_or_another_spelling_is_the_same_client(store: CounterStore, hops: list[str]) -> None:
    app = limited_app(RateLimiter(store, trusted_proxies=["10.0.0.0/8"]), "3/hour")
    try:
        requests = [
            [("X-Forwarded-For", f"198.51.100.{i}"), ("X-Forwarded-For", hop)] for i, hop in enumerate(hops)
        ]
        assert await statuses_from(app, "10.0.0.1", requests) == LIMITED_THRICE
    finally:
        await close(store)


MALFORMED = [
    "unknown",
    "_hidden",
    "999.1.1.1",
    "[2001:db8::1",
    "[2001:db8::1]x",
    "1.2.3.4:x",
    "a b",
    "",
    "1.2.3.4:5:6",
]


def test_an_unparsable_hop_stops_the_walk_and_the_peer_is_counted() -> None:
    """The right-most untrusted hop is the one the trusted proxy wrote: if it is not an address,
    nothing to its left (written by the client) is believed; the request counts as the proxy's."""
    limiter = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8"])
    for bad in MALFORMED:
        for written in (f"198.51.100.1, {bad}", f"{bad}"):
            assert address(limiter, "10.1.2.3", ("X-Forwarded-For", written)) == "10.1.2.3", written
        lines = [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", bad)]
        assert address(limiter, "10.1.2.3", *lines) == "10.1.2.3", bad


@pytest.mark.anyio
async def test_malformed_hops_never_give_a_client_new_buckets(store: CounterStore) -> None:
    app = limited_app(RateLimiter(store, trusted_proxies=["10.0.0.0/8"]), "3/hour")
    requests = [[("X-Forwarded-For", f"198.51.100.{i}, {bad}{i}")] for i, bad in enumerate(MALFORMED[:6])]
    try:
        assert await statuses_from(app, "10.0.0.1", requests) == LIMITED_THRICE
    finally:
        await close(store)


# --- 1b. Forwarded (RFC 7239) --------------------------------------------------------------------


def test_forwarded_for_values() -> None:
    limiter = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8"], proxy_header="forwarded")
    fwd = "Forwarded"
    assert address(limiter, "10.0.0.1", (fwd, "for=198.51.100.7")) == "198.51.100.7"
    assert address(limiter, "10.0.0.1", (fwd, 'for="[2001:db8::1]:4711"')) == "2001:db8::1"
    assert address(limiter, "10.0.0.1", (fwd, 'For="198.51.100.7:4711";proto=https;by=10.0.0.1')) == (
        "198.51.100.7"
    )
    # Several elements and lines; the right-most untrusted one is the client.
    many = (fwd, 'for=198.51.100.1;proto=http, for="[2001:db8::2]"'), (fwd, "for=10.0.0.9")
    assert address(limiter, "10.0.0.1", *many) == "2001:db8::2"
    # A quoted comma or semicolon belongs to the value; a quoted-pair is unescaped.
    assert address(limiter, "10.0.0.1", (fwd, 'for=198.51.100.1;ext="a,b;c", for="203.0.113.\\9"')) == (
        "203.0.113.9"
    )


@pytest.mark.parametrize(
    "last",
    [
        "for=unknown",
        "for=_hidden",
        "proto=https",  # an element without for=
        "for=198.51.100.2;for=198.51.100.3",  # two for= in one element
        'for="198.51.100.2',  # an unterminated quote
        "for=198.51.100.2 junk",
        "for",
        "",
    ],
)
def test_a_malformed_forwarded_element_counts_as_the_peer(last: str) -> None:
    limiter = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8"], proxy_header="forwarded")
    assert address(limiter, "10.0.0.1", ("Forwarded", f"for=198.51.100.1, {last}")) == "10.0.0.1"
    assert address(limiter, "10.0.0.1", ("Forwarded", "for=198.51.100.1"), ("Forwarded", last)) == "10.0.0.1"


def test_a_malformed_line_from_the_client_does_not_hide_the_proxy_line() -> None:
    """An unterminated quote in the client's own line ends with that line: the element the proxy
    added on a line of its own is still read."""
    limiter = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8"], proxy_header="forwarded")
    lines = ("Forwarded", 'for="198.51.100.1'), ("Forwarded", "for=203.0.113.7")
    assert address(limiter, "10.0.0.1", *lines) == "203.0.113.7"


def test_only_the_header_the_proxy_writes_is_read() -> None:
    """A proxy forwards unchanged whatever the client put in a header it does not manage."""
    both = ("Forwarded", "for=198.51.100.66"), ("X-Forwarded-For", "203.0.113.7")
    by_xff = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8"])
    assert address(by_xff, "10.0.0.1", *both) == "203.0.113.7"
    by_forwarded = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8"], proxy_header="forwarded")
    both = ("Forwarded", "for=203.0.113.7"), ("X-Forwarded-For", "198.51.100.66")
    assert address(by_forwarded, "10.0.0.1", *both) == "203.0.113.7"
    with pytest.raises(ValueError, match="proxy_header"):
        RateLimiter(MemoryStore(), proxy_header="x-real-ip")  # type: ignore[arg-type]


# --- 2. IPv6: one bucket per /64 ------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_ipv6_host_owns_a_64_and_gets_one_bucket(store: CounterStore) -> None:
    app = limited_app(RateLimiter(store), "3/hour")
    try:
        same_64 = [f"2001:db8:1:2::{i:x}" for i in range(1, 6)] + ["2001:db8:1:2:ffff:ffff:ffff:ffff"]
        assert await statuses_of_peers(app, same_64) == LIMITED_THRICE
        assert await statuses_of_peers(app, ["2001:db8:1:3::1"]) == [200]  # the next /64: another host
    finally:
        await close(store)


@pytest.mark.anyio
async def test_ipv4_mapped_addresses_are_their_ipv4(store: CounterStore) -> None:
    app = limited_app(RateLimiter(store), "3/hour")
    try:
        peers = ["203.0.113.9", "::ffff:203.0.113.9", "::ffff:cb00:7109"] * 2
        assert await statuses_of_peers(app, peers) == LIMITED_THRICE
    finally:
        await close(store)


@pytest.mark.anyio
async def test_forwarded_ipv6_clients_are_bucketed_by_64_too(store: CounterStore) -> None:
    app = limited_app(RateLimiter(store, trusted_proxies=["10.0.0.0/8"]), "3/hour")
    hops = ["2001:db8:5:6::1", "2001:DB8:5:6::2", "[2001:db8:5:6::3]:443", "2001:db8:5:6:0:0:0:4"]
    try:
        requests = [[("X-Forwarded-For", hop)] for hop in [*hops, "fe80::1%eth0", "2001:db8:5:6::5"]]
        statuses = await statuses_from(app, "10.0.0.1", requests)
    finally:
        await close(store)
    assert statuses[:4] == [200, 200, 200, 429]
    assert statuses[4] == 200  # fe80::/64, another network
    assert statuses[5] == 429


def test_ipv6_prefix_is_configurable() -> None:
    peer = "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"
    assert key(RateLimiter(MemoryStore()), peer) == "2001:db8:aaaa:bbbb::/64"
    assert key(RateLimiter(MemoryStore(), ipv6_prefix=48), peer) == "2001:db8:aaaa::/48"
    assert key(RateLimiter(MemoryStore(), ipv6_prefix=128), peer) == f"{peer}/128"
    assert key(RateLimiter(MemoryStore()), "203.0.113.9") == "203.0.113.9"
    assert key(RateLimiter(MemoryStore()), "::ffff:203.0.113.9") == "203.0.113.9"
    assert key(RateLimiter(MemoryStore()), "testclient") == "testclient"  # not an address: as is
    assert address(RateLimiter(MemoryStore()), peer) == peer  # the address itself stays whole
    for bad in (0, 129, -1, True):
        with pytest.raises(ValueError, match="ipv6_prefix"):
            RateLimiter(MemoryStore(), ipv6_prefix=bad)


# --- 3. refused requests do not count -------------------------------------------------------------


def retry_until(app: App, clock: FakeClock, times: Sequence[float]) -> list[tuple[float, int, int | None]]:
    """One request at each time: (time, status, Retry-After)."""
    from toolkit.testing import TestClient

    outcomes: list[tuple[float, int, int | None]] = []
    with TestClient(app) as client:
        for when in times:
            clock.now = when
            response = client.get("/r")
            retry = response.headers.get("retry-after")
            outcomes.append((when, response.status_code, None if retry is None else int(retry)))
    return outcomes


@pytest.mark.parametrize("algorithm", ["fixed", "sliding"])
def test_a_client_retrying_ten_times_a_second_gets_its_limit_every_second(
    store: CounterStore, clock: FakeClock, algorithm: str
) -> None:
    app = limited_app(RateLimiter(store, algorithm=algorithm), "2/second")  # type: ignore[arg-type]
    outcomes = retry_until(app, clock, [BASE + 0.05 + k / 10 for k in range(100)])  # 10 seconds
    per_second = [0] * 10
    for when, status, retry in outcomes:
        if status == 200:
            per_second[int(when - BASE)] += 1
        else:
            assert retry == 1  # never more than the window
    assert per_second == [2] * 10


@pytest.mark.parametrize("algorithm", ["fixed", "sliding"])
@pytest.mark.parametrize("start", [0, 0.5, 17.25, 59])
def test_retry_after_is_exact_and_within_the_window(
    store: CounterStore, clock: FakeClock, algorithm: str, start: float
) -> None:
    """A client retrying every second: after a refusal with ``Retry-After: n``, its next success
    is exactly ``n`` seconds later (nothing earlier passes), and ``n`` never exceeds the window."""
    app = limited_app(RateLimiter(store, algorithm=algorithm), "3/minute")  # type: ignore[arg-type]
    outcomes = retry_until(app, clock, [BASE + start + k for k in range(240)])
    successes = [when for when, status, _ in outcomes if status == 200]
    last = outcomes[-1][0]
    for when, status, retry in outcomes:
        if status == 429:
            assert retry is not None
            assert 1 <= retry <= 60
            later = [s for s in successes if s > when]
            if when + retry <= last:
                assert later[0] == when + retry, (when - BASE, retry)
            else:
                assert not later
    # Its limit's worth in every window after the first, however hard it retries.
    counts = [sum(1 for s in successes if BASE + w * 60 < s <= BASE + (w + 1) * 60) for w in range(1, 3)]
    assert counts == [3, 3]


@pytest.mark.anyio
async def test_concurrent_requests_in_two_processes_admit_exactly_the_limit(
    redis_url: str, redis_prefix: str, clock: FakeClock
) -> None:
    """Two limiters on two Redis clients (two processes' view of one Redis), 40 requests at once from
    one client: exactly the limit passes, and the refused ones leave nothing behind."""
    clock.now = BASE + 1
    stores = [RedisStore(url=redis_url, prefix=redis_prefix) for _ in range(2)]
    apps = [limited_app(RateLimiter(store), "5/minute") for store in stores]
    results: list[int] = []

    async def hit(app: App) -> None:
        results.extend(await statuses_from(app, "203.0.113.5", [()]))

    try:
        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(hit, apps[i % 2])
        assert sorted(results) == [200] * 5 + [429] * 35
        # Half a window later the 5 weigh 2.5 (2 when rounded down): 3 more pass, not fewer.
        clock.now = BASE + 60 + 30
        later = [await statuses_from(apps[i % 2], "203.0.113.5", [()]) for i in range(5)]
        assert [s for [s] in later] == [200, 200, 200, 429, 429]
    finally:
        for store in stores:
            await store.close()


# --- a real uvicorn behind a "proxy" on 127.0.0.1 -----------------------------------------------------


def create_app() -> App:
    """The app of the uvicorn test: 127.0.0.1 is the trusted proxy."""
    url = os.environ.get("ABUSE_REDIS_URL")
    store: CounterStore
    store = RedisStore(url=url, prefix=os.environ["ABUSE_PREFIX"]) if url else MemoryStore()
    by_xff = RateLimiter(store, trusted_proxies=["127.0.0.1"], prefix="xff")
    by_forwarded = RateLimiter(store, trusted_proxies=["127.0.0.1"], proxy_header="forwarded", prefix="fwd")

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        await close(store)

    app = App(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/xff", dependencies=[Depends(by_xff.limit("3/hour"))])
    async def xff() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fwd", dependencies=[Depends(by_forwarded.limit("3/hour"))])
    async def fwd() -> dict[str, bool]:
        return {"ok": True}

    return app


@contextlib.contextmanager
def uvicorn(tmp_path: Path, http: str, env: dict[str, str]) -> Iterator[int]:
    """``uvicorn --factory test_ratelimit_abuse:create_app`` on a free port; always killed.

    ``--no-proxy-headers``: uvicorn leaves the peer (127.0.0.1) alone, so the limiter reads the
    forwarded headers itself."""
    from redis_server import free_port

    port = free_port()
    log_path = tmp_path / f"uvicorn-{http}-{port}.log"
    command = [sys.executable, "-m", "uvicorn", "test_ratelimit_abuse:create_app", "--factory"]
    command += ["--app-dir", str(TESTS_DIR), "--host", "127.0.0.1", "--port", str(port), "--http", http]
    command += ["--no-proxy-headers", "--no-access-log", "--lifespan", "on"]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=TESTS_DIR.parent
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"uvicorn did not start:\n{log_path.read_text()}"
            time.sleep(0.05)
        yield port
    finally:
        stop_process(process)


def raw_status(port: int, path: str, *headers: str) -> int:
    """A request with exactly these header lines (repeated names stay separate lines)."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall("\r\n".join(lines).encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line = data.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), data[:200]
    return int(status_line.split()[1])


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_uvicorn_two_forwarded_lines_through_a_trusted_proxy(
    tmp_path: Path, redis_url: str, redis_prefix: str, http: str
) -> None:
    env = {"ABUSE_REDIS_URL": redis_url, "ABUSE_PREFIX": redis_prefix}
    with uvicorn(tmp_path, http, env) as port:
        xff = [
            raw_status(port, "/xff", f"X-Forwarded-For: 198.51.100.{i}", "X-Forwarded-For: 203.0.113.7")
            for i in range(6)
        ]
        fwd = [
            raw_status(
                port, "/fwd", f"Forwarded: for=198.51.100.{i}", 'Forwarded: for="[2001:db8:9::1]:4711"'
            )
            for i in range(3)
        ] + [
            raw_status(port, "/fwd", f"Forwarded: for=198.51.100.{i}", f'Forwarded: for="[2001:db8:9::{i}]"')
            for i in range(3)
        ]
        other = raw_status(port, "/xff", "X-Forwarded-For: 203.0.113.8")
    assert xff == LIMITED_THRICE
    assert fwd == LIMITED_THRICE  # one /64, whatever the port or the interface id
    assert other == 200


def test_error_responses_of_a_limited_route_carry_the_count() -> None:
    """A wrong password's 401 (or a 422) is when a client most needs to see what is left."""
    limiter = RateLimiter(MemoryStore())
    app = App()

    @app.post("/login", dependencies=[Depends(limiter.limit("5/minute"))])
    async def login(ok: bool = False) -> dict[str, bool]:
        if not ok:
            raise HTTPException(401, "no")
        return {"ok": True}

    from toolkit.testing import TestClient

    client = TestClient(app)
    refused = client.post("/login")
    assert refused.status_code == 401
    assert refused.headers["ratelimit-remaining"] == "4"
    assert refused.headers.get_list("ratelimit-limit") == ["5"]
    assert client.post("/login?ok=maybe").headers["ratelimit-remaining"] == "3"  # a 422
    assert client.post("/login?ok=true").headers.get_list("ratelimit-remaining") == ["2"]


def test_two_unnamed_limits_on_one_route_never_share_a_counter() -> None:
    from toolkit.testing import TestClient

    limiter = RateLimiter(MemoryStore())
    app = App(dependencies=[Depends(limiter.limit("1000/minute"))])

    @app.get("/items", dependencies=[Depends(limiter.limit("10/minute"))])
    async def list_items() -> dict[str, int]:
        return {"n": 1}

    @app.delete("/items", dependencies=[Depends(limiter.limit("5/minute"))])
    async def delete_items() -> dict[str, int]:
        return {"n": 0}

    client = TestClient(app)
    gets = [client.get("/items").status_code for _ in range(10)]
    assert gets == [200] * 10  # the app-wide 1000/minute counter is its own
    assert client.delete("/items").status_code == 200  # GET's count is not DELETE's
    assert client.get("/items").status_code == 429
