"""create_engine honours connect_args (issue 17, defect 12): TLS is never silently dropped.

Before the fix, ``create_engine`` built its own asyncpg connect function from the URL and
dropped ``connect_args``: an ``ssl`` context demanding verified TLS gave a plain-text
connection, and ``server_settings`` were lost.

TLS is tested on the run's server (``server_url``: the service on TCP, or the embedded one on
a Unix socket), whose case is decided from what it is (socket, ``ssl`` off, ``ssl`` on), and on
a private server with TLS on (the system's PostgreSQL binaries: the embedded wheel is built
without TLS; a self-signed certificate made here with ``openssl``), so that the verified and
the refused handshakes run whatever the run's server is.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL

from blogdata.db.engine import create_engine
from blogdata.db.routing import create_read_engine
from blogdata.errors import ConfigurationError

SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


async def _scalar(url: URL, sql: str, **options: object) -> object:
    engine = create_engine(url, poolclass=NullPool, **options)
    try:
        async with asyncio.timeout(30), engine.connect() as conn:  # a guard against a hang only
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


def _on_socket(url: URL) -> bool:
    host = url.host or url.query.get("host")
    return host is None or str(host).startswith("/")


def _trusting(cert_pem: str) -> ssl.SSLContext:
    """A context that trusts exactly ``cert_pem`` (a self-signed server certificate)."""
    context = ssl.create_default_context(cadata=cert_pem)
    context.check_hostname = False  # a snakeoil or test certificate names no usable host
    return context


@pytest.mark.parametrize("pgbouncer", [False, True], ids=["direct", "pgbouncer-path"])
async def test_server_settings_in_connect_args_reach_the_server(
    server_url: URL, pgbouncer: bool
) -> None:
    # Before: dropped, so the server reported its default application_name.
    name = await _scalar(
        server_url,
        "SELECT current_setting('application_name')",
        connect_args={"server_settings": {"application_name": "blogdata-connect-args"}},
        pgbouncer=pgbouncer,
    )
    assert name == "blogdata-connect-args"


async def test_connect_args_on_a_read_engine_reach_the_read_server(server_url: URL) -> None:
    engine = create_read_engine(
        server_url,
        poolclass=NullPool,
        connect_args={"server_settings": {"application_name": "blogdata-reader"}},
    )
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT current_setting('application_name')")) == (
                "blogdata-reader"
            )
    finally:
        await engine.dispose()


async def test_the_adapters_own_connect_args_are_honoured_too(server_url: URL) -> None:
    engine = create_engine(
        server_url, poolclass=NullPool, connect_args={"prepared_statement_cache_size": 0}
    )
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert raw.dbapi_connection._prepared_statement_cache is None  # type: ignore[union-attr]
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("connect_args", "words"),
    [
        ({"sslmode_typo": "require"}, "neither asyncpg.connect"),
        ("ssl=require", "must be a dict"),
    ],
    ids=["unknown-name", "not-a-dict"],
)
def test_connect_args_that_cannot_be_honoured_are_refused(
    server_url: URL, connect_args: object, words: str
) -> None:
    with pytest.raises(ConfigurationError, match=words):
        create_engine(server_url, connect_args=connect_args)


def test_connect_args_with_a_custom_async_creator_are_refused(server_url: URL) -> None:
    async def creator() -> None:
        return None

    with pytest.raises(ConfigurationError, match="async_creator"):
        create_engine(server_url, async_creator=creator, connect_args={"ssl": True})


async def test_verified_tls_is_honoured_or_refused_clearly_on_the_runs_server(
    server_url: URL,
) -> None:
    """The system CAs trust no test server: never a plain-text connection, one clear error."""
    demand = {"connect_args": {"ssl": ssl.create_default_context()}}
    if _on_socket(server_url):
        # The embedded server: a Unix socket carries no TLS; asyncpg would ignore ssl there.
        with pytest.raises(ConfigurationError, match="Unix socket carries no TLS"):
            await _scalar(server_url, SSL_IN_USE, **demand)
        return
    server_ssl = await _scalar(server_url, "SHOW ssl")
    expected = "certificate was not accepted" if server_ssl == "on" else "does not accept TLS"
    with pytest.raises(ConfigurationError, match=expected) as caught:
        await _scalar(server_url, SSL_IN_USE, **demand)
    assert "TLS" in str(caught.value)
    if server_ssl == "on":
        pem = await _scalar(server_url, "SELECT pg_read_file(current_setting('ssl_cert_file'))")
        assert isinstance(pem, str)
        trusted = {"connect_args": {"ssl": _trusting(pem)}}
        assert await _scalar(server_url, SSL_IN_USE, **trusted) is True


@pytest.mark.parametrize("ssl_value", ["require", True], ids=["require", "true"])
async def test_tls_demanded_over_a_unix_socket_is_refused_before_connecting(
    ssl_value: object,
) -> None:
    url = URL.create("postgresql+asyncpg", username="postgres", query={"host": "/tmp"})
    with pytest.raises(ConfigurationError, match="Unix socket carries no TLS"):
        create_engine(url, connect_args={"ssl": ssl_value})


@dataclass
class TlsServer:
    """A private server with TLS on, on 127.0.0.1, and its self-signed certificate."""

    url: URL
    cert_pem: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_with_tls() -> Path | None:
    """Return the bin folder of a PostgreSQL build with TLS (the embedded wheel has none)."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    """Start a private server with ``ssl = on`` and a fresh self-signed certificate; stop it."""
    binaries = _postgres_with_tls()
    if binaries is None:  # the run's-server test above still runs on every machine
        pytest.skip("no PostgreSQL build with TLS under /usr/lib/postgresql (Debian: postgresql)")
    home = Path(tempfile.mkdtemp(prefix="blogdata-tls-"))
    home.chmod(0o755)  # the server's system user must traverse it
    pgdata = home / "pgdata"
    user = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root
    port = _free_port()
    pg_ctl = str(binaries / "pg_ctl")
    try:
        pgdata.mkdir(mode=0o700)
        if user is not None:
            shutil.chown(pgdata, user, user)
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust"],
            check=True, capture_output=True, timeout=120, user=user,
        )  # fmt: skip
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=blogdata-tls-test", "-keyout", str(pgdata / "server.key"),
             "-out", str(pgdata / "server.crt")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for name in ("server.key", "server.crt"):
            (pgdata / name).chmod(0o600)
            if user is not None:
                shutil.chown(pgdata / name, user, user)
        subprocess.run(
            [pg_ctl, "-D", str(pgdata), "-w", "-t", "60", "-l", str(pgdata / "log"),
             "-o", f"-h 127.0.0.1 -p {port} -k {pgdata} -c ssl=on", "start"],
            check=True, capture_output=True, timeout=90, user=user,
        )  # fmt: skip
        url = URL.create(
            "postgresql+asyncpg", username="postgres", host="127.0.0.1", port=port
        ).set(database="postgres")
        yield TlsServer(url, (pgdata / "server.crt").read_text())
    finally:
        if (pgdata / "postmaster.pid").exists():
            subprocess.run(
                [pg_ctl, "-D", str(pgdata), "-w", "-m", "immediate", "stop"],
                capture_output=True, timeout=60, user=user, check=False,
            )  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


async def test_a_context_with_the_system_cas_fails_on_a_self_signed_server_naming_tls(
    tls_server: TlsServer,
) -> None:
    # Before: connect_args were dropped and the connection was made without verification.
    with pytest.raises(ConfigurationError, match="certificate was not accepted") as caught:
        await _scalar(
            tls_server.url, SSL_IN_USE, connect_args={"ssl": ssl.create_default_context()}
        )
    assert "TLS to PostgreSQL at 127.0.0.1:" in str(caught.value)


async def test_a_context_trusting_the_servers_certificate_connects_over_tls(
    tls_server: TlsServer,
) -> None:
    trusted = {"ssl": _trusting(tls_server.cert_pem)}
    assert await _scalar(tls_server.url, SSL_IN_USE, connect_args=trusted) is True
    assert await _scalar(tls_server.url, SSL_IN_USE, pgbouncer=True, connect_args=trusted)
    # Without connect_args asyncpg prefers TLS but does not verify: the choice stays the user's.
    assert os.environ.get("PGSSLMODE") in (None, "", "prefer")
