"""The keys both apps count password attempts under (apps/shop/throttle.py explains the policy).

Framework-neutral, so the toolkit app and its FastAPI twin count the same client and the same
account alike.
"""

import hashlib
import ipaddress

__all__ = ["account_key", "address_key"]


def account_key(username: str) -> str:
    """The per-account counter's key: bounded (a login's username has no length limit),
    case-insensitive (``alice``, ``ALICE``), never the raw username."""
    folded = username.strip().casefold().encode("utf-8", "surrogatepass")
    return hashlib.sha256(folded).hexdigest()[:32]


def address_key(host: str) -> str:
    """The per-address counter's key: an IPv6 client counts by its /64 (what one subscriber
    usually gets, so rotating addresses within it buys nothing), an IPv4-mapped one as IPv4."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]  # not an address (a test client's name, a Unix socket's path)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
