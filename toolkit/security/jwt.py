"""JSON Web Tokens on PyJWT (``pip install 'toolkit[jwt]'``), with the unsafe choices taken away.

- Decoding always checks the signature against an explicit algorithm allow-list: ``"none"`` is
  refused, and so is a list that mixes HMAC (``HS*``) with public-key algorithms, the setting
  behind algorithm-confusion attacks (a token signed with HS256 using the public key as secret).
- Tokens always expire: ``create_token`` sets ``exp`` and ``iat`` (and ``nbf`` if asked) and
  ``decode_token`` requires ``exp`` whatever ``require=`` lists (``require=("sub",)`` means
  "``sub`` as well", never "instead of ``exp``": a token without ``exp`` is valid forever once
  leaked). Only ``require_exp=False``, spelled out, accepts a token without one.
- HMAC keys shorter than the hash (32 bytes for HS256) are refused (RFC 7518 §3.2).
- Every rejected token is a 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` and a
  detail that says why (expired, not yet valid, bad signature, malformed...)::

    oauth2 = OAuth2PasswordBearer(tokenUrl="token")

    async def current_user(token: Annotated[str, Depends(oauth2)]) -> User:
        claims = decode_token(token, SECRET_KEY)
        ...
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

try:
    import jwt
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("toolkit.security.jwt needs PyJWT: pip install 'toolkit[jwt]'") from exc

from ..exceptions import HTTPException

__all__ = ["INVALID_TOKEN_CHALLENGE", "create_token", "decode_token", "invalid_token"]

INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'

_HMAC_KEY_SIZES = {"HS256": 32, "HS384": 48, "HS512": 64}
_RESERVED_CLAIMS = ("exp", "iat", "nbf")


def invalid_token(detail: str) -> HTTPException:
    """The 401 for a rejected bearer token (RFC 6750 §3.1)."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE})


def _check_algorithm(algorithm: str) -> None:
    if algorithm.lower() == "none":
        raise ValueError('the "none" algorithm signs nothing; it is never allowed')


def _check_hmac_key(algorithm: str, key: Any) -> None:
    size = _HMAC_KEY_SIZES.get(algorithm.upper())
    if size is None or not isinstance(key, (str, bytes)):
        return
    length = len(key.encode("utf-8") if isinstance(key, str) else key)
    if length < size:
        raise ValueError(
            f"{algorithm} needs a key of at least {size} bytes, got {length}; "
            "generate one with secrets.token_urlsafe(64)"
        )


def _seconds(value: datetime.timedelta | float) -> datetime.timedelta:
    return value if isinstance(value, datetime.timedelta) else datetime.timedelta(seconds=value)


def create_token(
    claims: Mapping[str, Any],
    key: Any,
    *,
    algorithm: str = "HS256",
    expires_in: datetime.timedelta | float = datetime.timedelta(minutes=15),
    not_before: datetime.timedelta | float | datetime.datetime | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` into a compact JWT that expires ``expires_in`` (seconds or timedelta) from now.

    ``iat`` is now; ``not_before`` (a delay from now, or an absolute aware datetime) sets ``nbf``.
    ``key`` is the HMAC secret (str/bytes, at least the hash size) or, for RS*/ES*/PS*/EdDSA, a
    private key (needs ``cryptography``). Pass ``exp``/``iat``/``nbf`` through the keyword
    arguments, not in ``claims``.
    """
    _check_algorithm(algorithm)
    _check_hmac_key(algorithm, key)
    reserved = [name for name in _RESERVED_CLAIMS if name in claims]
    if reserved:
        raise ValueError(f"set {reserved} through expires_in= / not_before=, not in the claims")
    now = datetime.datetime.now(datetime.UTC)
    payload = dict(claims)
    payload["iat"] = now
    payload["exp"] = now + _seconds(expires_in)
    if not_before is not None:
        payload["nbf"] = (
            not_before if isinstance(not_before, datetime.datetime) else now + _seconds(not_before)
        )
    return jwt.encode(payload, key, algorithm=algorithm, headers=dict(headers) if headers else None)


def _check_allow_list(algorithms: Sequence[str]) -> list[str]:
    if isinstance(algorithms, str):
        raise TypeError(f"algorithms must be a list of names, like [{algorithms!r}], not a string")
    allowed = list(algorithms)
    if not allowed:
        raise ValueError("algorithms must name at least one algorithm")
    for name in allowed:
        _check_algorithm(name)
    hmac_names = [name for name in allowed if name.upper() in _HMAC_KEY_SIZES]
    if hmac_names and len(hmac_names) < len(allowed):
        raise ValueError(
            f"algorithms mixes HMAC ({hmac_names}) with public-key algorithms: "
            "that is what algorithm-confusion attacks exploit; decode each kind with its own key"
        )
    return allowed


# Most specific first: PyJWT's errors subclass each other (all are InvalidTokenError).
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "Token has expired"),
    (jwt.ImmatureSignatureError, "Token is not yet valid"),
    (jwt.InvalidSignatureError, "Token signature is invalid"),
    (jwt.InvalidAlgorithmError, "Token algorithm is not allowed"),
    (jwt.InvalidAudienceError, "Token audience is invalid"),
    (jwt.InvalidIssuerError, "Token issuer is invalid"),
    (jwt.InvalidIssuedAtError, "Token issue time is invalid"),
    (jwt.DecodeError, "Token is malformed"),
)


def _reason(exc: Exception) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"Token has no {exc.claim!r} claim"
    return next((text for cls, text in _REASONS if isinstance(exc, cls)), "Token is invalid")


def _required_claims(require: Sequence[str], require_exp: bool) -> list[str]:
    if isinstance(require, str):
        raise TypeError(f"require must be a list of claim names, like [{require!r}], not a string")
    names = list(dict.fromkeys(require))
    if not require_exp:
        if "exp" in names:
            raise ValueError('require lists "exp" but require_exp=False; drop one of them')
        return names
    return names if "exp" in names else ["exp", *names]


def decode_token(
    token: str | bytes,
    key: Any,
    *,
    algorithms: Sequence[str] = ("HS256",),
    audience: str | Iterable[str] | None = None,
    issuer: str | Sequence[str] | None = None,
    leeway: datetime.timedelta | float = 0,
    require: Sequence[str] = (),
    require_exp: bool = True,
) -> dict[str, Any]:
    """Verify ``token`` and return its claims, or raise a 401 ``HTTPException`` saying why.

    The token's ``alg`` header must be one of ``algorithms`` (``"none"`` never is). ``exp``,
    ``nbf`` and ``iat`` are checked with ``leeway`` seconds of clock skew; ``audience`` and
    ``issuer``, when given, must match (a token carrying an ``aud`` is refused without them).
    ``require`` lists claims that must be present *besides* ``exp``, which is always required
    unless ``require_exp=False`` (an ``exp`` that is present is still checked). A bad allow-list,
    a too-short HMAC key or contradictory ``require`` options is a ``ValueError``: a
    configuration bug, not a bad token.
    """
    allowed = _check_allow_list(algorithms)
    for name in allowed:
        _check_hmac_key(name, key)
    required = _required_claims(require, require_exp)
    try:
        return jwt.decode(
            token,
            key,
            algorithms=allowed,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": required, "verify_signature": True},
        )
    except jwt.InvalidTokenError as exc:
        raise invalid_token(_reason(exc)) from exc
