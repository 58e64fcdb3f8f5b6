"""Reading request bodies: one header pass, a one-message fast path, limits while streaming."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, cookie_parser
from starlette.types import Message, Receive, Scope

from .exceptions import RequestBodyTooLarge

__all__ = [
    "URLENCODED_FORM_LIMIT",
    "body_headers",
    "declared_size_check",
    "form_body_limit",
    "header_lines",
    "header_value",
    "is_json_content_type",
    "is_limited",
    "limited_receive",
    "read_chunks",
    "request_cookies",
]


def header_value(scope: Scope, name: bytes) -> str | None:
    """The first value of the (lower-case) header ``name``, or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def header_lines(scope: Scope, name: bytes) -> bytes:
    """Every line of the (lower-case) header ``name``, joined: a second ``Authorization`` line
    must count, not hide behind the first (cache keys, ``Vary``)."""
    return b"\x1f".join(value for key, value in scope["headers"] if key == name)


def request_cookies(scope: Scope) -> dict[str, str]:
    """The cookies of every ``Cookie`` line, later lines winning: what ``Request.cookies`` reads."""
    cookies: dict[str, str] = {}
    for key, value in scope["headers"]:
        if key == b"cookie":
            cookies.update(cookie_parser(value.decode("latin-1")))
    return cookies


def body_headers(scope: Scope) -> tuple[str | None, str | None]:
    """``(content-length, content-type)`` in one pass over the headers."""
    length = kind = None
    for key, value in scope["headers"]:
        if key == b"content-length":
            length = value.decode("latin-1")
        elif key == b"content-type":
            kind = value.decode("latin-1")
    return length, kind


#: The body limit of urlencoded forms, unless a route sets its own ``max_body_size``.
URLENCODED_FORM_LIMIT = 256 * 1024


def form_body_limit(scope: Scope, limit: int) -> int:
    """``limit``, or ``URLENCODED_FORM_LIMIT`` when smaller and the body is a urlencoded form:
    python-multipart parses one byte by byte in Python (10 MB of "&" is seconds of CPU)."""
    # Every Content-Type line: Starlette's parser reads the first, a second must not hide it.
    for name, value in scope["headers"]:
        if (
            name == b"content-type"
            and value.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"
        ):
            return min(limit, URLENCODED_FORM_LIMIT)
    return limit


def declared_size_check(content_length: str | None, limit: int) -> None:
    """413 before reading anything when ``Content-Length`` already says the body is too large."""
    if content_length is None or not (content_length.isascii() and content_length.isdigit()):
        return  # absent or malformed: the count of what arrives decides
    # More than 18 digits is over any limit (and int() refuses thousands of digits).
    if len(content_length) > 18 or int(content_length) > limit:
        raise RequestBodyTooLarge(limit)


def limited_receive(
    receive: Receive, limit: int, scope: Scope | None = None, *, forms: bool = False
) -> Receive:
    """``receive`` that raises a 413 once more than ``limit`` body bytes came in, or at the first
    read when the ``scope``'s ``Content-Length`` already says so (nothing is read then).

    ``forms``: a urlencoded body is held to ``URLENCODED_FORM_LIMIT`` (``form_body_limit``).
    """
    received = 0
    checked = scope is None

    async def limited() -> Message:
        nonlocal received, checked, limit
        if not checked:
            checked = True  # PERF: the headers are looked at only when the body is read
            assert scope is not None
            if forms:
                limit = form_body_limit(scope, limit)
            declared_size_check(header_value(scope, b"content-length"), limit)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestBodyTooLarge(limit)
        return message

    limited.toolkit_limited = True  # type: ignore[attr-defined]  # error handlers: already limited
    return limited


def is_limited(receive: Receive) -> bool:
    """Whether ``receive`` already counts against a body limit (``limited_receive``)."""
    return getattr(receive, "toolkit_limited", False) is True


async def read_chunks(first: Message, receive: Receive, limit: int | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    message = first
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if limit is not None and size > limit:
                raise RequestBodyTooLarge(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


def is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    media = value.split(";", 1)[0].strip().lower()
    if not media.startswith("application/"):
        return False
    subtype = media[len("application/") :]
    return subtype == "json" or subtype.endswith("+json")
