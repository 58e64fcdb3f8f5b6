"""A Redis store on ``redis.asyncio`` (``pip install 'toolkit[redis]'``)."""

from __future__ import annotations

from typing import Any

import anyio

from ._store import StoreError

__all__ = ["RedisStore"]


_INCR_SCRIPT = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if value == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""


class RedisStore:
    """Keys live under ``prefix``; value and TTL are written by one ``SET ... PX``.

    Every command runs under ``timeout`` seconds; a slow, refused or failed command raises
    ``StoreError`` (never a silent miss). Pass a ``redis.asyncio.Redis`` client, or a ``url``.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        url: str | None = None,
        prefix: str = "toolkit:session:",
        timeout: float = 1.0,
    ) -> None:
        if client is None:
            if url is None:
                raise ValueError("RedisStore needs a redis.asyncio client or a url")
            try:
                import redis.asyncio as redis_asyncio
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError("RedisStore needs the redis package: pip install 'toolkit[redis]'") from exc
            client = redis_asyncio.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.client = client
        self.prefix = prefix
        self.timeout = timeout

    async def _run(self, command: str, *args: Any, **kwargs: Any) -> Any:
        import redis.exceptions

        try:
            with anyio.fail_after(self.timeout):
                return await getattr(self.client, command)(*args, **kwargs)
        except TimeoutError as exc:
            raise StoreError(f"redis {command} timed out after {self.timeout}s") from exc
        except (redis.exceptions.RedisError, OSError) as exc:
            raise StoreError(f"redis {command} failed: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        value = await self._run("get", self.prefix + key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        result = await self._run(
            "set", self.prefix + key, value, px=max(1, int(ttl * 1000)), xx=only_if_exists
        )
        return bool(result)

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        # INCRBY and the expiry of a new counter in one server-side step.
        result = await self._run("eval", _INCR_SCRIPT, 1, self.prefix + key, amount, max(1, int(ttl * 1000)))
        return int(result)

    async def delete(self, key: str) -> None:
        await self._run("delete", self.prefix + key)

    async def ping(self) -> bool:
        return bool(await self._run("ping"))

    async def close(self) -> None:
        await self.client.aclose()
