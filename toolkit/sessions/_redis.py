"""A Redis store on ``redis.asyncio`` (``pip install 'toolkit[redis]'``)."""

from __future__ import annotations

from typing import Any

import anyio

from ..stores import StoreError

__all__ = ["RedisStore"]


_INCR_SCRIPT = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
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
        pool = getattr(client, "connection_pool", None)
        if pool is None:  # e.g. RedisCluster: commands are routed per key, not through one pool
            raise TypeError(f"RedisStore needs a redis.asyncio.Redis client, not {type(client).__name__}")
        if getattr(pool, "connection_kwargs", {}).get("decode_responses"):
            raise ValueError(
                "RedisStore stores bytes (msgpack, signed data): pass a client with decode_responses=False"
            )
        import redis.exceptions

        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self._pool = pool
        self._failures = (redis.exceptions.RedisError, OSError)  # looked up once, not per command

    async def _run(self, *command: Any) -> Any:
        """Send one command and read its reply on a connection held for just that command.

        A connection whose reply was not read (a timeout, the request cancelled mid-command, a
        broken socket) is closed before it goes back to the pool: the late reply would otherwise
        be read by the next command on it, so one user's session would answer another's request.
        We hold this guarantee ourselves rather than rely on how a redis-py release cleans up.
        """
        pool = self._pool
        connection = None
        answered = False
        try:
            with anyio.fail_after(self.timeout):
                connection = await pool.get_connection()
                await connection.send_command(*command)
                reply = await connection.read_response()
                answered = True
        except TimeoutError as exc:
            raise StoreError(f"redis {command[0]} timed out after {self.timeout}s") from exc
        except self._failures as exc:
            raise StoreError(f"redis {command[0]} failed: {exc}") from exc
        finally:
            if connection is not None:
                with anyio.CancelScope(shield=True):
                    if not answered:
                        await connection.disconnect(nowait=True)
                    await pool.release(connection)
        return reply

    async def get(self, key: str) -> bytes | None:
        value = await self._run("GET", self.prefix + key)
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        command = ["SET", self.prefix + key, value, "PX", max(1, int(ttl * 1000))]
        if only_if_exists:
            command.append("XX")
        return await self._run(*command) is not None  # "OK", or nil when XX found no key

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        # INCRBY and the expiry of a new counter in one server-side step.
        result = await self._run("EVAL", _INCR_SCRIPT, 1, self.prefix + key, amount, max(1, int(ttl * 1000)))
        return int(result)

    async def delete(self, key: str) -> None:
        await self._run("DEL", self.prefix + key)

    async def ping(self) -> bool:
        return bool(await self._run("PING"))

    async def close(self) -> None:
        await self.client.aclose()
