"""Bad input (issue 9, part 1) against ``adv_app``, in-process and behind real uvicorn processes
(both of its HTTP parsers): multipart abuse, percent-encoding tricks in every request part,
duplicate query keys, ``Host`` tricks, unknown methods and open-redirect attempts.

Already covered elsewhere, not repeated: malformed, deep, huge-number and invalid-UTF-8 JSON, JSON
without a JSON content type and body limits (tests/test_validation.py), percent garbage in-process
(test_validation.py::test_percent_encoded_garbage_never_500), ``//evil.com`` and ``/\\evil.com``
routes (tests/test_routing.py::test_no_open_redirect), a form upload over ``max_body_size``
(test_validation.py::test_a_form_upload_over_max_body_size_is_a_413).
"""

from __future__ import annotations

import json
import select
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import adv_app
import pytest
from adv_support import Server, call_sync, parse, raw_get, read_all, read_response, scope_for

from toolkit.testing import TestClient

BOUNDARY = b"adv-boundary"
MULTIPART = {"content-type": "multipart/form-data; boundary=adv-boundary"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(adv_app.app, raise_server_exceptions=False) as client:
        yield client


def multipart(parts: Iterable[tuple[bytes, bytes]], preamble: bytes = b"") -> bytes:
    chunks = [preamble]
    for headers, data in parts:
        chunks += [b"--", BOUNDARY, b"\r\n", headers, b"\r\n\r\n", data, b"\r\n"]
    chunks += [b"--", BOUNDARY, b"--\r\n"]
    return b"".join(chunks)


def field(name: bytes, value: bytes = b"v", extra_headers: bytes = b"") -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="' + name + b'"' + extra_headers, value


def upload_part(data: bytes) -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="file"; filename="a.bin"', data


def in_process(target: bytes, headers: Iterable[tuple[bytes, bytes]] = (), method: str = "GET") -> Any:
    """The request as uvicorn hands it over: ``path`` percent-decoded, ``raw_path`` untouched."""
    raw_path, _, query = target.partition(b"?")
    scope = scope_for(unquote(raw_path.decode("ascii")), method=method, query=query, raw_path=raw_path)
    headers = list(headers)
    if not any(name == b"host" for name, _ in headers):
        headers.insert(0, (b"host", b"testserver"))
    scope["headers"] = headers
    return call_sync(adv_app.app, scope)


# --- multipart ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "status"), [(1000, 200), (1001, 400), (5000, 400)])
def test_thousands_of_fields_are_a_400(client: TestClient, count: int, status: int) -> None:
    body = multipart(field(b"f%d" % i) for i in range(count))
    response = client.post("/form", content=body, headers=MULTIPART)
    assert response.status_code == status, response.text
    if status == 400:
        assert "Too many fields" in response.json()["detail"]


def test_thousands_of_files_are_a_400(client: TestClient) -> None:
    response = client.post("/upload", content=multipart([upload_part(b"x")] * 1001), headers=MULTIPART)
    assert response.status_code == 400
    assert "Too many files" in response.json()["detail"]


def test_a_field_over_max_part_size_is_a_400(client: TestClient) -> None:
    ok = client.post("/form", content=multipart([field(b"other", b"a" * MIB)]), headers=MULTIPART)
    assert ok.status_code == 200
    response = client.post("/form", content=multipart([field(b"other", b"a" * (MIB + 1))]), headers=MULTIPART)
    assert response.status_code == 400
    assert "exceeded maximum size" in response.json()["detail"]
    # A file part is spooled, not held as a field: it is bounded by max_body_size (10 MiB) instead.
    big_file = client.post("/upload", content=multipart([upload_part(b"a" * 2 * MIB)]), headers=MULTIPART)
    assert big_file.json() == {"size": 2 * MIB}


@pytest.mark.parametrize(
    "extra",
    [
        b"\r\nX-Big: " + b"a" * MIB,  # one header line of a megabyte
        b"\r\nX-H: v" * 10_000,  # ten thousand header lines
        b"; filename*=" + b"%41" * 100_000,  # a huge parameter in the Content-Disposition line
    ],
    ids=["one-huge-header", "many-headers", "huge-disposition"],
)
def test_huge_part_headers_are_a_400(client: TestClient, extra: bytes) -> None:
    response = client.post("/form", content=multipart([field(b"title", b"v", extra)]), headers=MULTIPART)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["detail"], str)


def test_part_headers_within_the_limits_pass(client: TestClient) -> None:
    extra = b"\r\nX-A: " + b"a" * 4000 + b"\r\nX-B: b"
    response = client.post("/form", content=multipart([field(b"title", b"hi", extra)]), headers=MULTIPART)
    assert response.json() == {"title": "hi"}


def test_megabytes_of_crlf_preamble(client: TestClient) -> None:
    # RFC 2046 §5.1.1: the preamble is ignored; it still counts towards max_body_size.
    body = multipart([field(b"title", b"hello")], preamble=b"\r\n" * (4 * MIB))
    assert client.post("/form", content=body, headers=MULTIPART).json() == {"title": "hello"}
    body = multipart([field(b"title", b"hello")], preamble=b"\r\n" * (6 * MIB))
    assert client.post("/form", content=body, headers=MULTIPART).status_code == 413


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=adv-boundary", b"garbage without any boundary"),
        ("multipart/form-data", multipart([field(b"title")])),  # no boundary parameter
        ("multipart/form-data; boundary=adv-boundary", b"--adv-boundary\r\n" + b"\r\n" * 1000),
    ],
)
def test_malformed_multipart_is_a_400(client: TestClient, content_type: str, body: bytes) -> None:
    response = client.post("/form", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text


def test_health_answers_while_a_huge_upload_is_in_flight(server: Server) -> None:
    """Megabytes of preamble go in, piece by piece; between pieces a health check on another
    connection must be answered while the upload has not been answered (it cannot be yet)."""
    piece, pieces = b"\r\n" * (MIB // 2), 8  # 8 MiB of preamble in all
    tail = multipart([field(b"title", b"after the preamble")])
    head = b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=adv-boundary\r\n"
    head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (len(piece) * pieces + len(tail))
    with server.connect() as upload, server.connect() as health:
        upload.sendall(head)
        for _ in range(pieces):
            upload.sendall(piece)
            health.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = read_response(health)
            assert (reply.status, reply.body) == (200, b'{"status":"ok"}')
            readable, _, _ = select.select([upload], [], [], 0)
            assert not readable, "the upload was answered before its body was complete"
        upload.sendall(tail)
        reply = parse(read_all(upload))
    assert (reply.status, reply.body) == (200, b'{"title":"after the preamble"}')


# --- percent-encoding tricks: the guard and the router see the same decoded path ------------------

PATH_TRAVERSALS = [
    b"/public/..%2fadmin/secret",
    b"/public/%2e%2e/admin/secret",
    b"/public/%2e%2e%2fadmin%2fsecret",
    b"/public/../admin/secret",
    b"/public/..%2f..%2fadmin/secret",
    b"/public%2f..%2fadmin/secret",
    b"/public/..%c0%afadmin/secret",  # overlong UTF-8 "/"
    b"/public/%c0%ae%c0%ae/admin/secret",  # overlong UTF-8 "."
    b"/public/..%5cadmin/secret",
    b"/public/..%00/admin/secret",
    b"//admin/secret",
    b"/./admin/secret",
    b"/%2e/admin/secret",
    b"/public/..%2fguarded/secret",
    b"//guarded/secret",
    b"http://evil.com/admin/secret",  # absolute-form request target
]


def assert_no_secret(status: int, body: bytes) -> None:
    assert status < 500, body
    assert b"crown jewels" not in body, (status, body)


@pytest.mark.parametrize("target", PATH_TRAVERSALS)
def test_traversals_never_reach_the_admin_route(server: Server, target: bytes) -> None:
    reply = parse(server.request(raw_get(target)))
    assert_no_secret(reply.status, reply.body)
    if not target.startswith(b"http:"):
        reply = in_process(target)
        assert_no_secret(reply.status, reply.body)


@pytest.mark.parametrize(
    "target",
    [
        b"/%61dmin/secret",
        b"/admin%2fsecret",
        b"/%61dmin%2f%73ecret",
        b"/admin/secret%2f",
        b"/%67uarded/secret",
    ],
)
def test_an_encoded_protected_path_is_protected_like_the_plain_one(server: Server, target: bytes) -> None:
    token = b"X-Admin-Token: " + adv_app.ADMIN_TOKEN.encode()
    without = parse(server.request(raw_get(target)))
    assert without.status == 401, without.body
    assert in_process(target).status == 401
    with_token = parse(server.request(raw_get(target, token)))
    assert with_token.status in (200, 307), with_token.body  # "/admin/secret/" redirects
    if with_token.status == 200:
        assert with_token.body == b'{"secret":"the crown jewels"}'


ECHOES: list[tuple[bytes, bytes | None, dict[str, Any]]] = [
    (b"/echo?q=%ff", None, {"q": "\ufffd"}),
    (b"/echo?q=%00", None, {"q": "\x00"}),
    (b"/echo?q=..%2f..%2fetc%2fpasswd", None, {"q": "../../etc/passwd"}),
    (b"/echo?q=%2e%2e", None, {"q": ".."}),
    (b"/echo?q=%c0%af", None, {"q": "\ufffd\ufffd"}),
    (b"/echo?q=%", None, {"q": "%"}),
    (b"/echo?q=%zz%4", None, {"q": "%zz%4"}),
    (b"/echo?%ff=1&q=ok", None, {"q": "ok"}),
    # Headers and cookies are not percent-decoded; non-ASCII bytes are read as Latin-1 (as in Starlette).
    (b"/echo", b"X-Probe: %ff%00", {"header": "%ff%00"}),
    (b"/echo", b"X-Probe: ..%2f", {"header": "..%2f"}),
    (b"/echo", b"X-Probe: \xff\xfe", {"header": "\xff\xfe"}),
    (b"/echo", b"X-Probe: \xc0\xaf", {"header": "\xc0\xaf"}),
    (b"/echo", b"X-Probe: %2e%2e%c0%af%00", {"header": "%2e%2e%c0%af%00"}),
    (b"/echo", b"Cookie: probe=%ff", {"cookie": "%ff"}),
    (b"/echo", b"Cookie: probe=..%2f%00", {"cookie": "..%2f%00"}),
    (b"/echo", b"Cookie: probe=\xc0\xaf", {"cookie": "\xc0\xaf"}),
    (b"/echo", b'Cookie: probe="\\377"', {"cookie": "\xff"}),
    (b"/echo", b"Cookie: probe=%2e%2e%c0%af", {"cookie": "%2e%2e%c0%af"}),
]


@pytest.mark.parametrize(("target", "header", "expected"), ECHOES)
def test_hostile_encodings_reach_handlers_as_documented(
    server: Server, target: bytes, header: bytes | None, expected: dict[str, Any]
) -> None:
    headers = [header] if header else []
    reply = parse(server.request(raw_get(target, *headers)))
    assert reply.status == 200, reply.body
    assert json.loads(reply.body).items() >= expected.items()
    name, _, value = header.partition(b": ") if header else (b"", b"", b"")
    local = in_process(target, [(name.lower(), value)] if header else [])
    assert local.status == 200
    assert local.json().items() >= expected.items()


@pytest.mark.parametrize("query", [b"n=%ff", b"n=%00", b"n=%c0%af", b"n=1%00", b"many=1&many=%ff"])
def test_hostile_encodings_in_typed_params_are_a_422(server: Server, query: bytes) -> None:
    reply = parse(server.request(raw_get(b"/echo?" + query)))
    assert reply.status == 422, reply.body
    assert in_process(b"/echo?" + query).status == 422


@pytest.mark.parametrize(
    "request_bytes",
    [
        raw_get(b"/public/\xff"),  # raw non-ASCII in the target
        raw_get(b"/echo?q=\xc3\xa9"),
        raw_get(b"/public/a b"),
        raw_get(b"/echo", b"X-Probe: a\x00b"),  # NUL in a header value
        raw_get(b"/echo", b"X-Probe: a\rb"),
        raw_get(b"/echo", b"Bad Name: x"),
    ],
)
def test_bytes_the_server_refuses_never_reach_the_app(server: Server, request_bytes: bytes) -> None:
    reply = parse(server.request(request_bytes))
    assert reply.status == 400, reply.body


# --- duplicate query keys, Host tricks, unknown methods -------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"n=1&n=2&n=3", {"n": 3}),  # a scalar: the last value wins (README, "Parameters")
        (b"q=a&q=b", {"q": "b"}),
        (b"n=x&n=1", {"n": 1}),  # earlier values are not validated
        (b"many=1&many=2&many=2", {"many": [1, 2, 2]}),  # a list: every value, in order
        (b"q=a&Q=b&q%00=c", {"q": "a"}),  # keys are exact
    ],
)
def test_duplicate_query_keys(server: Server, query: bytes, expected: dict[str, Any]) -> None:
    assert in_process(b"/echo?" + query).json().items() >= expected.items()
    assert json.loads(parse(server.request(raw_get(b"/echo?" + query))).body).items() >= expected.items()
    assert in_process(b"/echo?n=1&n=x").status == 422  # the last one is validated


@pytest.mark.parametrize("host", [b"x/admin?", b"x/admin#", b"evil.com@x", b"x\\admin", b"x:1/admin", b""])
def test_a_malformed_host_changes_neither_routing_nor_urls(server: Server, host: bytes) -> None:
    assert parse(server.request(raw_get(b"/admin/secret", host=host))).status == 401
    public = parse(server.request(raw_get(b"/public/a", host=host)))
    assert json.loads(public.body) == {"rest": "a"}
    where = json.loads(parse(server.request(raw_get(b"/where", host=host))).body)
    # An invalid Host is ignored: url_for falls back to the address the server listens on.
    assert where == {"url_for": f"http://127.0.0.1:{server.port}/where", "url_path_for": "/where"}
    redirect = parse(server.request(raw_get(b"/items/", host=host)))
    assert redirect.status == 307
    assert redirect.header("location") == f"http://127.0.0.1:{server.port}/items"
    local = in_process(b"/where", [(b"host", host)])  # the server is ("testserver", 80)
    assert local.json() == {"url_for": "http://testserver/where", "url_path_for": "/where"}
    assert in_process(b"/admin/secret", [(b"host", host)]).status == 401
    assert in_process(b"/items/", [(b"host", host)]).headers["location"] == "http://testserver/items"


def test_a_well_formed_host_is_trusted_as_sent(server: Server) -> None:
    # Documented: the Host header names the site (as in Starlette); restrict it with Starlette's
    # TrustedHostMiddleware. A redirect stays on the host the client itself asked for.
    where = json.loads(parse(server.request(raw_get(b"/where", host=b"evil.com"))).body)
    assert where["url_for"] == "http://evil.com/where"
    redirect = parse(server.request(raw_get(b"/items/", host=b"evil.com")))
    assert redirect.header("location") == "http://evil.com/items"


@pytest.mark.parametrize("method", ["PROPFIND", "FOO", "get", "M-SEARCH", "CONNECT", "TRACE"])
def test_unknown_methods_are_a_405_with_allow(server: Server, method: str) -> None:
    local = in_process(b"/items", method=method)
    assert (local.status, local.headers["allow"]) == (405, "GET, HEAD")
    assert local.json() == {"detail": "Method Not Allowed"}
    assert in_process(b"/nowhere", method=method).status == 404
    reply = parse(server.request(raw_get(b"/items", method=method.encode())))
    if reply.status == 400:
        # httptools only parses the methods it knows (RFC 9110 and WebDAV); the others never
        # reach the app. h11 passes any token through.
        assert server.http == "httptools"
        assert method in ("FOO", "get")
    else:
        assert (reply.status, reply.header("allow")) == (405, "GET, HEAD"), reply.body


# --- open redirects: the only redirect the toolkit makes is the trailing-slash 307 ----------------

REDIRECT_ATTACKS = [
    b"//evil.com/",
    b"/\\evil.com/",
    b"/\\/evil.com/",
    b"/%2f%2fevil.com/",
    b"/%2fevil.com/",
    b"/%5cevil.com/",
    b"/%5c%5cevil.com/",
    b"/%09/evil.com/",
    b"/files/%2f%2fevil.com/",
    b"/files/..%2f%2fevil.com/",
    b"/files/a%0d%0aLocation:%20http:%2f%2fevil.com/",
    b"/files/%0d%0a/",
    b"/files/a%3f%2f%2fevil.com/",
    b"/files/a%23@evil.com/",
    b"/files/%40evil.com/",
    b"/files/%5c%5cevil.com/",
    b"/items/?next=//evil.com",
    b"/items/?%0d%0aLocation:%20//evil.com",
    b"/files/x?a=b",
    b"/files/%2541/",  # a literal "%41" must not come back as "A"
    b"/files/%252f%252fevil.com/",
    b"/files/%25/",
]


def assert_stays_on_host(status: int, location: str | None, target: bytes, host: str) -> None:
    assert status < 500
    if location is None:
        assert status != 307
        return
    assert status == 307
    assert not set(location) & {"\r", "\n"}
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc) == ("http", host), location
    requested = unquote(target.partition(b"?")[0].decode())
    # The same path, one slash more or less, with ? and # kept inside the path (percent-encoded).
    assert unquote(parts.path) in (requested.removesuffix("/"), requested + "/"), location
    assert parts.query == target.partition(b"?")[2].decode()
    assert not parts.fragment


@pytest.mark.parametrize("target", REDIRECT_ATTACKS)
def test_the_slash_redirect_never_leaves_the_host(server: Server, target: bytes) -> None:
    reply = parse(server.request(raw_get(target)))
    assert_stays_on_host(reply.status, reply.header("location"), target, "127.0.0.1")
    local = in_process(target)
    assert_stays_on_host(local.status, local.headers.get("location"), target, "testserver")


@pytest.mark.parametrize(
    "path", ["/files/a\r\nSet-Cookie: evil=1/", "/items/", "/\\evil.com/", "//evil.com/"]
)
def test_raw_control_characters_never_make_a_header(path: str) -> None:
    """Only in-process can CR/LF reach the scope undecoded: the Location is still one clean header."""
    scope = scope_for(path, query=b"x=\r\nSet-Cookie: evil=1")
    reply = call_sync(adv_app.app, scope)
    assert "set-cookie" not in reply.headers
    location = reply.headers.get("location")
    if location is not None:
        assert not set(location) & {"\r", "\n"}
        assert urlsplit(location).netloc == "testserver"
