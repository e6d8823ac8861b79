"""Describing where a URL points, for messages: never its password."""

from __future__ import annotations

from sqlalchemy.engine import URL

__all__ = ["server_address"]


def server_address(url: URL) -> str:
    """Describe where ``url`` points (host and port, or the socket folder), never the password."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = ",".join(host)
    if host.startswith("/"):
        return f"the Unix socket in {host}"
    return f"{host}:{url.port or 5432}"
