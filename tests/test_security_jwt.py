"""JWT helpers (issue 6): round trips, and every way a token is refused (expired, nbf, signature,
malformed, alg "none", algorithms outside the allow-list, algorithm confusion)."""

import base64
import datetime
import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
import pytest

from toolkit import HTTPException
from toolkit.security.jwt import create_token, decode_token

KEY = "k" * 32
OTHER_KEY = "o" * 32
INVALID_TOKEN = 'Bearer error="invalid_token"'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token signed by hand with HMAC-SHA256 (or not at all), whatever ``alg`` claims."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{b64url(signature)}"


def rejected(token: str, key: Any = KEY, **kwargs: Any) -> str:
    with pytest.raises(HTTPException) as info:
        decode_token(token, key, **kwargs)
    assert info.value.status_code == 401
    assert info.value.headers == {"WWW-Authenticate": INVALID_TOKEN}
    detail: str = info.value.detail
    return detail


def test_jwt_round_trip() -> None:
    before = int(datetime.datetime.now(datetime.UTC).timestamp())
    claims = decode_token(create_token({"sub": "ann", "roles": ["admin"]}, KEY, expires_in=60), KEY)
    assert claims["sub"] == "ann"
    assert claims["roles"] == ["admin"]
    assert before <= claims["iat"] <= before + 2
    assert claims["exp"] == claims["iat"] + 60
    claims = decode_token(
        create_token({}, KEY * 2, algorithm="HS512", expires_in=datetime.timedelta(hours=1)),
        KEY * 2,
        algorithms=["HS512"],
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert "nbf" not in claims


def test_jwt_expired_and_leeway() -> None:
    token = create_token({"sub": "ann"}, KEY, expires_in=-5)
    assert rejected(token) == "Token has expired"
    assert decode_token(token, KEY, leeway=30)["sub"] == "ann"


def test_jwt_not_yet_valid() -> None:
    assert rejected(create_token({}, KEY, not_before=60)) == "Token is not yet valid"
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    assert rejected(create_token({}, KEY, not_before=at)) == "Token is not yet valid"
    assert "nbf" in decode_token(create_token({}, KEY, not_before=-1), KEY)


def test_jwt_bad_signature_and_tampering() -> None:
    assert rejected(create_token({"sub": "ann"}, OTHER_KEY)) == "Token signature is invalid"
    header, _, signature = create_token({"sub": "ann"}, KEY).split(".")
    exp = int(datetime.datetime.now(datetime.UTC).timestamp()) + 60
    tampered = f"{header}.{b64url(json.dumps({'sub': 'admin', 'exp': exp}).encode())}.{signature}"
    assert rejected(tampered) == "Token signature is invalid"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "Bearer x.y.z", "e30.e30.e30.e30"])
def test_jwt_malformed(token: str) -> None:
    assert rejected(token) == "Token is malformed"


def test_jwt_alg_none_and_not_allowed() -> None:
    exp = int(datetime.datetime.now(datetime.UTC).timestamp()) + 60
    for alg in ("none", "None", "NONE"):
        assert rejected(forged({"alg": alg, "typ": "JWT"}, {"sub": "admin", "exp": exp}, None)) == (
            "Token algorithm is not allowed"
        )
    hs512 = create_token({}, KEY * 2, algorithm="HS512")
    assert rejected(hs512, KEY * 2, algorithms=["HS256"]) == "Token algorithm is not allowed"


def test_jwt_algorithm_confusion() -> None:
    # The server verifies RS256 with its public key; the attacker signs HS256 with that public key.
    public_pem = (
        b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----"
    )
    exp = int(datetime.datetime.now(datetime.UTC).timestamp()) + 60
    token = forged({"alg": "HS256", "typ": "JWT"}, {"sub": "admin", "exp": exp}, public_pem)
    assert rejected(token, public_pem, algorithms=["RS256"]) == "Token algorithm is not allowed"
    with pytest.raises(ValueError, match="algorithm-confusion"):
        decode_token(token, public_pem, algorithms=["HS256", "RS256"])


def test_jwt_configuration_errors() -> None:
    token = create_token({}, KEY)
    with pytest.raises(ValueError, match="none"):
        decode_token(token, KEY, algorithms=["HS256", "none"])
    with pytest.raises(ValueError, match="none"):
        create_token({}, KEY, algorithm="none")
    with pytest.raises(ValueError, match="at least one"):
        decode_token(token, KEY, algorithms=[])
    with pytest.raises(TypeError, match="list"):
        decode_token(token, KEY, algorithms="HS256")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        create_token({}, "short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        decode_token(token, "short")
    with pytest.raises(ValueError, match="expires_in"):
        create_token({"exp": 1}, KEY)


def test_jwt_required_claims_audience_issuer() -> None:
    no_exp = pyjwt.encode({"sub": "ann"}, KEY, algorithm="HS256")
    assert rejected(no_exp) == "Token has no 'exp' claim"
    token = create_token({"aud": "api", "iss": "https://issuer"}, KEY)
    assert decode_token(token, KEY, audience="api", issuer="https://issuer")["aud"] == "api"
    assert rejected(token, audience="other") == "Token audience is invalid"
    assert rejected(token, audience="api", issuer="https://evil") == "Token issuer is invalid"
    assert rejected(token) == "Token audience is invalid"  # a token for some audience needs one
    future_iat = forged({"alg": "HS256"}, {"exp": 2**40, "iat": 2**39}, KEY.encode())
    assert rejected(future_iat) == "Token is not yet valid"
    bad_iat = forged({"alg": "HS256"}, {"exp": 2**40, "iat": "yesterday"}, KEY.encode())
    assert rejected(bad_iat) == "Token issue time is invalid"
