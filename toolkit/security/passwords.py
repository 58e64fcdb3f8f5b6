"""Password hashing on a memory-hard KDF: ``hashlib.scrypt`` (stdlib) or Argon2id (argon2-cffi).

Never a plain or fast hash. A hash is a self-describing string, so parameters can be raised later
and old hashes still verify (``needs_rehash`` tells when to re-hash at the next login):

- scrypt: ``$scrypt$ln=14,r=8,p=5$<salt>$<key>`` (base64 without padding; ``n = 2**ln``).
  The default, N=2^14 r=8 p=5, is one of OWASP's recommended settings: 16 MiB of memory and
  roughly 0.1-0.4 s of one core per hash or check. Lower it only in tests.
- argon2: argon2-cffi's own PHC string (``$argon2id$v=19$m=...,t=...,p=...$...``), with its
  defaults (RFC 9106's low-memory profile: 64 MiB, t=3, p=4) unless given.

``verify`` recognises either format by its prefix, whatever ``scheme`` the hasher creates.

A hash or check blocks its thread for the whole KDF. In an ``async def`` handler or dependency use
the awaitable forms, ``await hash_password_async(...)`` / ``await verify_password_async(...)``
(``PasswordHasher.hash_async`` / ``verify_async``): they run the KDF in a worker thread (both KDFs
release the GIL), so the event loop keeps serving other requests. The sync forms are for sync code
(a sync handler or dependency already runs in a worker thread).

The awaitable forms run at most ``max_concurrency`` KDFs at once per event loop (default: the
number of CPUs, at most 8) on a ``CapacityLimiter`` of their own; more wait their turn. So a burst
of logins neither allocates a KDF's memory (16 MiB for scrypt, 64 MiB for argon2) per request nor
takes the threads of anyio's default pool (40), which sync handlers and dependencies need.
``verify_async(password, None)`` spends a hash's time and returns ``False``: pass ``None`` for an
unknown username, so its answer takes as long as a wrong password's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import os
import sys
from typing import Any, Literal

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

__all__ = [
    "PasswordHasher",
    "hash_password",
    "hash_password_async",
    "needs_rehash",
    "verify_password",
    "verify_password_async",
]

Scheme = Literal["scrypt", "argon2"]

_SCRYPT_PREFIX = "$scrypt$"
_ARGON2_PREFIX = "$argon2"
_SALT_SIZE = 16
_KEY_SIZE = 32
_MAX_SCRYPT_MEMORY = 1 << 30  # refuse stored parameters that would need more than 1 GiB


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt_memory(n: int, r: int, p: int) -> int:
    # What OpenSSL checks against ``maxmem``: 128 * r * (N + 2 + p) bytes, plus a little slack.
    return 128 * r * (n + 2 + p) + 1024


def _default_max_concurrency() -> int:
    """The CPUs this process may run on, at least 1 and at most 8.

    More KDFs at once than cores only queue for the CPU while each holds its memory; 8 bounds
    that memory (8 x 64 MiB for argon2) on large machines, where logins rarely need more.
    """
    if sys.platform == "linux":
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


_limiter_ids = itertools.count()


class _LoopLimiter:
    """A ``CapacityLimiter`` of ``total`` tokens for each event loop, made on first use in it.

    anyio's limiters belong to one event loop (and backend): one shared by the loops of several
    test clients or threads would wake waiters from the wrong thread. A ``RunVar`` is scoped to
    the running loop and goes with it, as anyio's own default thread limiter does.
    """

    __slots__ = ("_var", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        # A name of its own: anyio < 4.10 keys run variables by name.
        self._var: RunVar[anyio.CapacityLimiter] = RunVar(f"toolkit.passwords.limiter.{next(_limiter_ids)}")

    def get(self) -> anyio.CapacityLimiter:
        try:
            return self._var.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.total)  # no await since get(): no race in one loop
            self._var.set(limiter)
            return limiter


#: Shared by the hashers that do not set ``max_concurrency``: the bound is the machine's.
_shared_limiter = _LoopLimiter(_default_max_concurrency())


def _import_argon2() -> Any:
    try:
        import argon2
    except ImportError as exc:
        raise RuntimeError("argon2 password hashes need argon2-cffi: pip install 'toolkit[argon2]'") from exc
    return argon2


class PasswordHasher:
    """Hash and verify passwords with one configured ``scheme`` ("scrypt" or "argon2").

    scrypt: ``n`` (a power of two, CPU/memory cost), ``r`` (block size), ``p`` (parallelism).
    argon2: ``time_cost``, ``memory_cost`` (KiB), ``parallelism``; ``None`` keeps argon2-cffi's
    defaults.

    ``max_concurrency``: how many ``hash_async``/``verify_async`` KDFs run at once per event loop;
    ``None`` (the default) shares one bound, the CPU count (at most 8), with every other hasher
    that leaves it unset, the module functions' included.
    """

    def __init__(
        self,
        scheme: Scheme = "scrypt",
        *,
        n: int = 2**14,
        r: int = 8,
        p: int = 5,
        time_cost: int | None = None,
        memory_cost: int | None = None,
        parallelism: int | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if max_concurrency is not None and (isinstance(max_concurrency, bool) or max_concurrency < 1):
            raise ValueError(f"max_concurrency must be a positive integer or None, not {max_concurrency!r}")
        if scheme not in ("scrypt", "argon2"):
            raise ValueError(f"unknown password hashing scheme {scheme!r}; use 'scrypt' or 'argon2'")
        if n < 2 or n & (n - 1):
            raise ValueError(f"scrypt n must be a power of two greater than 1, not {n}")
        if r < 1 or p < 1:
            raise ValueError("scrypt r and p must be positive")
        if _scrypt_memory(n, r, p) > _MAX_SCRYPT_MEMORY:
            raise ValueError(f"scrypt n={n}, r={r}, p={p} needs more than 1 GiB of memory")
        self.scheme = scheme
        self.n, self.r, self.p = n, r, p
        self._limiter = _shared_limiter if max_concurrency is None else _LoopLimiter(max_concurrency)
        self._own_limit = max_concurrency is not None
        self._argon2: Any = None
        if scheme == "argon2":
            argon2 = _import_argon2()
            options = {"time_cost": time_cost, "memory_cost": memory_cost, "parallelism": parallelism}
            self._argon2 = argon2.PasswordHasher(**{k: v for k, v in options.items() if v is not None})

    @property
    def max_concurrency(self) -> int:
        """How many ``hash_async``/``verify_async`` KDFs run at once per event loop."""
        return self._limiter.total

    def __repr__(self) -> str:
        limit = f", max_concurrency={self._limiter.total}" if self._own_limit else ""
        if self.scheme == "scrypt":
            return f"PasswordHasher('scrypt', n={self.n}, r={self.r}, p={self.p}{limit})"
        return f"PasswordHasher('argon2'{limit})"

    # --- public API ----------------------------------------------------------------------------

    def hash(self, password: str) -> str:
        """A new salted hash of ``password`` in the configured scheme."""
        if self.scheme == "argon2":
            return str(self._argon2.hash(password))
        salt = os.urandom(_SALT_SIZE)
        key = _scrypt(password, salt, self.n, self.r, self.p, _KEY_SIZE)
        ln = self.n.bit_length() - 1
        return f"{_SCRYPT_PREFIX}ln={ln},r={self.r},p={self.p}${_b64encode(salt)}${_b64encode(key)}"

    def verify(self, password: str, hashed: str) -> bool:
        """Whether ``password`` matches ``hashed`` (either scheme), compared in constant time.

        A string that is not a hash this module knows raises ``ValueError`` (a data bug, not a
        wrong password); an argon2 hash without argon2-cffi installed raises ``RuntimeError``.
        """
        if hashed.startswith(_SCRYPT_PREFIX):
            n, r, p, salt, expected = _parse_scrypt(hashed)
            key = _scrypt(password, salt, n, r, p, len(expected))
            return hmac.compare_digest(key, expected)
        if hashed.startswith(_ARGON2_PREFIX):
            argon2 = _import_argon2()
            hasher = self._argon2 if self._argon2 is not None else argon2.PasswordHasher()
            try:
                return bool(hasher.verify(hashed, password))
            except argon2.exceptions.VerifyMismatchError:
                return False
            except (argon2.exceptions.InvalidHashError, argon2.exceptions.VerificationError) as exc:
                raise ValueError("malformed argon2 password hash") from exc
        raise ValueError("not a password hash this module knows (expected $scrypt$ or $argon2...$)")

    async def hash_async(self, password: str) -> str:
        """``hash`` in a worker thread (see ``max_concurrency``): for ``async def`` code."""
        return await anyio.to_thread.run_sync(self.hash, password, limiter=self._limiter.get())

    async def verify_async(self, password: str, hashed: str | None) -> bool:
        """``verify`` in a worker thread (see ``max_concurrency``): for ``async def`` code.

        ``hashed=None`` (no such user) computes a hash of ``password`` all the same and returns
        ``False``: an unknown username takes as long to refuse as a wrong password. A malformed
        ``hashed`` raises as ``verify`` does. Cancelled, it waits for the KDF it started to end.
        """
        limiter = self._limiter.get()
        if hashed is None:
            await anyio.to_thread.run_sync(self.hash, password, limiter=limiter)
            return False
        return await anyio.to_thread.run_sync(self.verify, password, hashed, limiter=limiter)

    def needs_rehash(self, hashed: str) -> bool:
        """Whether ``hashed`` was made with another scheme or other parameters than this hasher's."""
        if self.scheme == "scrypt":
            if not hashed.startswith(_SCRYPT_PREFIX):
                return True
            n, r, p, salt, key = _parse_scrypt(hashed)
            return (n, r, p, len(salt), len(key)) != (self.n, self.r, self.p, _SALT_SIZE, _KEY_SIZE)
        if not hashed.startswith(_ARGON2_PREFIX):
            return True
        return bool(self._argon2.check_needs_rehash(hashed))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_scrypt_memory(n, r, p), dklen=size
    )


def _parse_scrypt(hashed: str) -> tuple[int, int, int, bytes, bytes]:
    try:
        _, _, params, salt_text, key_text = hashed.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        ln, r, p = int(values["ln"]), int(values["r"]), int(values["p"])
        salt, key = _b64decode(salt_text), _b64decode(key_text)
    except (ValueError, KeyError, binascii.Error) as exc:
        raise ValueError("malformed scrypt password hash") from exc
    if not (1 <= ln < 32 and r >= 1 and p >= 1 and salt and len(key) >= 16):
        raise ValueError("malformed scrypt password hash")
    if _scrypt_memory(1 << ln, r, p) > _MAX_SCRYPT_MEMORY:
        raise ValueError("scrypt password hash parameters need more than 1 GiB of memory")
    return 1 << ln, r, p, salt, key


_default_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Hash ``password`` with scrypt at the default cost (see the module docstring)."""
    return _default_hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    """Check ``password`` against a hash made by ``hash_password`` or any ``PasswordHasher``."""
    return _default_hasher.verify(password, hashed)


async def hash_password_async(password: str) -> str:
    """``hash_password`` in a worker thread, for ``async def`` handlers (see the module docstring)."""
    return await _default_hasher.hash_async(password)


async def verify_password_async(password: str, hashed: str | None) -> bool:
    """``verify_password`` in a worker thread, for ``async def`` handlers.

    ``hashed=None`` (an unknown user) takes a hash's time and returns ``False``.
    """
    return await _default_hasher.verify_async(password, hashed)


def needs_rehash(hashed: str) -> bool:
    """Whether ``hashed`` differs from what ``hash_password`` would make now (re-hash on login)."""
    return _default_hasher.needs_rehash(hashed)
