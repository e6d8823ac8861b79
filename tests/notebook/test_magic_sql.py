"""%sql's SQL as written: no expansion, front-only options, binds, reset, non-transactional SQL.

Each test drives a real IPython shell against the run's database. The pooled tests use an
engine of one connection, so every run meets the connection the previous one left behind (the
backend pid is checked to prove it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata.db.engine import create_engine, drop_database
from blogdata.notebook import magic, use_engine
from blogdata.notebook import run as sync_run
from tests.notebook.shell import run, sql_shell


@pytest.fixture(scope="module")
def shell(database_url: URL) -> Iterator[InteractiveShell]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    with sql_shell(engine) as ip:
        ip.user_ns["_engine"] = engine
        yield ip


def fails(ip: InteractiveShell, source: str) -> str:
    """Run a cell that must fail with one UsageError line; check the next run still works."""
    result = ip.run_cell(source)
    error = result.error_in_exec
    assert isinstance(error, UsageError), error
    assert "\n" not in str(error)
    assert run(ip, "%sql SELECT 1 AS ok")["ok"].tolist() == [1]
    return str(error)


def engine_of(ip: InteractiveShell) -> AsyncEngine:
    engine: AsyncEngine = ip.user_ns["_engine"]
    return engine


def one(ip: InteractiveShell, source: str) -> Any:
    return run(ip, source).iloc[0, 0]


# --- defect 7: the line reaches the database as written ---------------------------------------


def test_ipython_does_not_expand_braces_or_dollars_in_the_line(shell: InteractiveShell) -> None:
    shell.user_ns.update(x=5, name="x' OR 'a' = 'a")
    frame = run(shell, "%sql SELECT '{x}' AS braces, '$x' AS dollar, '{name}' = 'bob' AS same")
    assert frame["braces"].tolist() == ["{x}"] and frame["dollar"].tolist() == ["$x"]
    assert frame["same"].tolist() == [False]  # not "'x' OR 'a' = 'a'": no injection
    shell.user_ns["target"] = "elsewhere"
    assert fails(shell, "%sql -o {target} SELECT 1").startswith("'{target}' is not a variable")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 'O''Brien' AS v", "O'Brien"),
        ("SELECT $$a$$ AS v", "a"),
        ("""SELECT '{"a": "b"}'::jsonb ->> 'a' AS v""", "b"),
        ("SELECT 'two  spaces\tand a tab' AS v", "two  spaces\tand a tab"),
        ('SELECT "quoted" FROM (SELECT \'q\' AS "quoted") AS t', "q"),
        ("SELECT 'x' AS v --out stolen --display 0", "x"),
    ],
    ids=["doubled-quote", "dollar-quote", "json-arrow", "whitespace", "quoted-ident", "dashes"],
)
def test_valid_sql_that_the_old_argument_parser_mangled_runs(
    shell: InteractiveShell, sql: str, expected: str
) -> None:
    frame = run(shell, "%sql " + sql)
    assert frame.iloc[0, 0] == expected
    assert "stolen" not in shell.user_ns and frame.display_rows == magic.DISPLAY_ROWS


def test_options_are_read_from_the_front_only(shell: InteractiveShell) -> None:
    run(shell, "%sql --display 1 -o first SELECT g FROM generate_series(1, 3) AS g")
    assert shell.user_ns["first"]["g"].tolist() == [1, 2, 3]
    assert "1 of 3 rows shown" in repr(shell.user_ns["first"])
    run(shell, "%%sql --out=second --display=2\nSELECT '-o third' AS s")
    assert shell.user_ns["second"]["s"].tolist() == ["-o third"] and "third" not in shell.user_ns
    assert "unknown option '--outt'" in fails(shell, "%sql --outt x SELECT 1")
    assert "--display takes a number" in fails(shell, "%sql --display -1 SELECT 1")
    assert "-- text" in fails(shell, "%sql --comment SELECT 1")


# --- defect 8: :name binds only where PostgreSQL reads a token --------------------------------


def test_colons_inside_literals_identifiers_comments_and_casts_are_not_binds(
    shell: InteractiveShell,
) -> None:
    shell.user_ns.update(x=5, y="why")
    frame = run(
        shell,
        "%%sql\n"
        "SELECT ':x' AS plain, E'\\':x' AS escaped, $$:x$$ AS dollar, $t$ :x $t$ AS tagged,\n"
        "       1 AS \":x\", '{\"a\":1}'::jsonb ->> 'a' AS json, :x::text AS cast_bind,\n"
        "       (ARRAY[1,2,3])[2:3] AS slice, :y AS y -- :nowhere\n"
        "/* :nowhere /* nested :nowhere */ still :nowhere */",
    )
    row = frame.iloc[0].to_dict()
    assert row["plain"] == ":x" and row["escaped"] == "':x" and row["dollar"] == ":x"
    assert row["tagged"] == " :x " and row[":x"] == 1 and row["json"] == "1"
    assert row["cast_bind"] == "5" and row["y"] == "why" and list(row["slice"]) == [2, 3]


def test_a_percent_paren_before_a_bind_keeps_its_placeholder(shell: InteractiveShell) -> None:
    # SQLAlchemy numbers asyncpg's $n with a regex over the text, which '%(' used to swallow.
    shell.user_ns.update(name="bob")
    frame = run(shell, "%sql SELECT '%(' || :name AS a, '%(name)s' AS b, :name AS c")
    assert frame.iloc[0].tolist() == ["%(bob", "%(name)s", "bob"]


def test_a_missing_variable_outside_literals_is_one_clear_line(shell: InteractiveShell) -> None:
    assert "no variable 'nowhere_at_all'" in fails(shell, "%sql SELECT :nowhere_at_all")


# --- what reaches the server: a property test ------------------------------------------------

_CHARS = st.sampled_from(list("ab :'\"\\%{}$()-*/;,.\n\tx1é") + ["::", ":a", "$$", "%(", ")s"])


def _literal(body: str) -> str:
    return "'" + body.replace("'", "''") + "'"


def _escape_literal(body: str) -> str:
    return "E'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'"


@st.composite
def _pieces(draw: st.DrawFn) -> tuple[list[str | tuple[str, str]], str | None]:
    """One select-list item as segments (text, or (bind name, its cast)), and a comment."""
    body = "".join(draw(st.lists(_CHARS, max_size=8)))
    kind = draw(
        st.sampled_from(["literal", "escape", "dollar", "json", "cast", "bind", "bindcast"])
    )
    name = draw(st.sampled_from(["p", "q", "r_1"]))
    segments: list[str | tuple[str, str]]
    if kind == "literal":
        segments = [_literal(body)]
    elif kind == "escape":
        segments = [_escape_literal(body)]
    elif kind == "dollar":
        tag = draw(st.sampled_from(["", "t", "x_1"]))
        segments = [f"${tag}$" + body.replace("$", "") + f"${tag}$"]
    elif kind == "json":
        segments = ["""'{"k":1, "m":"%(x)s"}'::jsonb ->> 'm'"""]
    elif kind == "cast":
        segments = [_literal(body) + "::text"]
    elif kind == "bind":
        segments = [(name, "")]
    else:
        segments = [(name, "::bytea")]
    comment = draw(
        st.sampled_from(
            [None, "-- :p ' \" $$ {x}\n", "/* :q /* ' */ $$ */", "/*:r_1*/", " -- %(p)s\n"]
        )
    )
    return segments, comment


@st.composite
def _queries(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    """A SELECT of random items: its SQL, the SQL the server must receive, the bound names."""
    items = draw(st.lists(_pieces(), min_size=1, max_size=5))
    segments: list[str | tuple[str, str]] = [
        "SELECT current_query() AS q, ",
        ("p", "::bytea"),
        " AS first",
    ]
    for i, (item, comment) in enumerate(items):
        alias = draw(st.sampled_from([f"c{i}", f'"c{i} :p ""x"" %"']))
        segments += [", ", *item, f" AS {alias}{comment or ''} "]
    names = list(dict.fromkeys(s[0] for s in segments if isinstance(s, tuple)))
    sql = "".join(s if isinstance(s, str) else f":{s[0]}{s[1]}" for s in segments)
    sent = "".join(
        s if isinstance(s, str) else f"${names.index(s[0]) + 1}::BYTEA{s[1]}" for s in segments
    )
    return sql, sent, names


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=_queries(), as_line=st.booleans())
def test_the_server_receives_the_text_with_only_binds_replaced(
    shell: InteractiveShell, database_url: URL, query: tuple[str, str, list[str]], as_line: bool
) -> None:
    sql, sent, names = query
    values = {"p": b"P:1", "q": b"%(p)s", "r_1": b"{x}'"}
    shell.user_ns.update(values)
    if as_line and "\n" not in sql:
        frame = shell.run_line_magic("sql", sql)
    else:
        frame = shell.run_cell_magic("sql", "", sql)
    # current_query() is the text the server parsed: the user's, with placeholders for binds.
    assert frame["q"].tolist() == [sent.strip()]

    async def direct() -> list[Any]:
        url = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetchrow(sent.strip(), *(values[n] for n in names)))
        finally:
            await conn.close()

    assert frame.iloc[0].tolist() == sync_run(direct())


# --- defect 9: every run leaves the pooled connection as it found it -------------------------


def _pid(ip: InteractiveShell) -> int:
    return int(one(ip, "%sql SELECT pg_backend_pid()"))


@pytest.mark.parametrize(
    ("change", "probe", "default"),
    [
        ("SET ROLE pg_read_all_data", "SELECT current_user::text", "login"),
        ("SET SESSION AUTHORIZATION pg_read_all_data", "SELECT session_user::text", "login"),
        ("SET search_path = pg_catalog", "SELECT current_setting('search_path')", "fresh"),
        ("SET statement_timeout = '1s'", "SELECT current_setting('statement_timeout')", "fresh"),
        (
            "SELECT set_config('app.tenant_id', '2', false)",
            "SELECT coalesce(current_setting('app.tenant_id', true), '') = '2'",
            False,
        ),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            "SELECT current_setting('default_transaction_read_only')",
            "fresh",
        ),  # fmt: skip
        ("CREATE TEMP TABLE magic_tmp (a int)", "SELECT to_regclass('pg_temp.magic_tmp')", None),
        (
            "SELECT pg_advisory_lock(4242)",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            0,
        ),
        ("LISTEN magic_channel", "SELECT count(*) FROM pg_listening_channels()", 0),
        (
            "PREPARE magic_prepared AS SELECT 1",
            "SELECT count(*) FROM pg_prepared_statements WHERE from_sql",
            0,
        ),
        (
            "DECLARE magic_cursor CURSOR WITH HOLD FOR SELECT 1",
            "SELECT count(*) FROM pg_cursors",
            0,
        ),
    ],
    ids=[
        "role",
        "session-authorization",
        "search-path",
        "statement-timeout",
        "set-config",
        "session-characteristics",
        "temp-table",
        "advisory-lock",
        "listen",
        "prepare",
        "holdable-cursor",
    ],
)
def test_session_state_a_run_sets_does_not_leak_into_the_next(
    shell: InteractiveShell, change: str, probe: str, default: object
) -> None:
    login = one(shell, "%sql SELECT session_user::text")
    fresh = one(shell, "%sql " + probe)
    expected = {"login": login, "fresh": fresh}.get(default, default)  # type: ignore[call-overload]
    pid = _pid(shell)
    run(shell, "%sql " + change)
    assert _pid(shell) == pid  # the same pooled connection: the reset, not a reconnect
    value = one(shell, "%sql " + probe)
    assert (None if value is None or value != value else value) == expected  # NaN/NA is None
    assert _pid(shell) == pid


def test_a_failed_run_releases_the_lock_it_took_before_failing(shell: InteractiveShell) -> None:
    pid = _pid(shell)
    fails(shell, "%sql SELECT pg_advisory_lock(4243), 1 / 0")
    locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    assert one(shell, "%sql " + locks) == 0 and _pid(shell) == pid


def test_other_users_of_the_pool_see_the_defaults(shell: InteractiveShell) -> None:
    run(shell, "%sql SET ROLE pg_read_all_data")

    async def seen() -> tuple[str, str]:
        async with engine_of(shell).connect() as conn:
            row = (await conn.execute(text("SELECT current_user, session_user"))).one()
            return str(row[0]), str(row[1])

    current, session = sync_run(seen())
    assert current == session


def test_a_prepared_statement_is_gone_by_the_next_run(shell: InteractiveShell) -> None:
    run(shell, "%sql PREPARE magic_gone AS SELECT 1")
    assert "magic_gone" in fails(shell, "%sql EXECUTE magic_gone")
    driver = "SELECT count(*) > 0 FROM pg_prepared_statements WHERE NOT from_sql"
    assert one(shell, "%sql " + driver)  # the driver's cached statements stay


def test_transaction_control_in_the_sql_is_one_clear_error(shell: InteractiveShell) -> None:
    for sql in ("COMMIT", "ROLLBACK"):
        assert "transaction control" in fails(shell, "%sql " + sql)


# --- statements that cannot run in a transaction block ---------------------------------------


def test_vacuum_and_create_index_concurrently_run_outside_a_transaction(
    shell: InteractiveShell,
) -> None:
    table = f"magic_vacuum_{uuid.uuid4().hex[:8]}"
    run(shell, f"%sql CREATE TABLE {table} (a int)")
    try:
        run(shell, f"%sql VACUUM (ANALYZE) {table}")
        assert one(shell, f"%sql SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables "
                          f"WHERE relname = '{table}'")  # fmt: skip
        run(shell, f"%sql CREATE INDEX CONCURRENTLY {table}_a ON {table} (a)")
        assert one(shell, f"%sql SELECT to_regclass('{table}_a') IS NOT NULL")
        run(shell, f"%sql DROP INDEX CONCURRENTLY {table}_a")
        assert one(shell, f"%sql SELECT to_regclass('{table}_a') IS NULL")
    finally:
        run(shell, f"%sql DROP TABLE IF EXISTS {table}")


def test_create_and_drop_database_run_outside_a_transaction(
    shell: InteractiveShell, server_url: URL
) -> None:
    name = f"magic_scratch_{uuid.uuid4().hex[:8]}"
    exists = f"%sql SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    try:
        run(shell, f"%sql CREATE DATABASE {name}")
        assert one(shell, exists) == 1
        run(shell, f"%sql DROP DATABASE {name}")
        assert one(shell, exists) == 0
    finally:
        sync_run(drop_database(server_url, name))


# --- SHOW, EXPLAIN and EXECUTE return frames (needs load_frame's own fix too) -----------------


def test_show_and_explain_return_frames(shell: InteractiveShell) -> None:
    assert run(shell, "%sql SHOW search_path").columns.tolist() == ["search_path"]
    plan = run(shell, "%sql EXPLAIN SELECT 1")
    assert plan.columns.tolist() == ["QUERY PLAN"] and "Result" in plan.iloc[0, 0]
    analysed = run(shell, "%sql EXPLAIN ANALYZE SELECT g FROM generate_series(1, 3) AS g")
    assert any("actual" in line for line in analysed.iloc[:, 0])


# --- read-only notebook databases ------------------------------------------------------------


@pytest.fixture
def read_only_shell(shell: InteractiveShell, database_url: URL) -> Iterator[InteractiveShell]:
    from blogdata.notebook import open_database

    table = f"magic_ro_{uuid.uuid4().hex[:8]}"
    run(shell, f"%sql CREATE TABLE {table} (a int)")
    notebook = sync_run(open_database(database_url, read=True))
    use_engine(None)
    shell.user_ns["_table"] = table
    try:
        yield shell
    finally:
        sync_run(notebook.close())
        use_engine(engine_of(shell))
        run(shell, f"%sql DROP TABLE {table}")


@pytest.mark.parametrize(
    "before",
    [
        None,
        "SET default_transaction_read_only = off",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "SET TRANSACTION READ WRITE",
        "COMMIT",
        "ROLLBACK",
    ],
)
def test_a_read_only_notebook_database_refuses_every_write(
    read_only_shell: InteractiveShell, before: str | None
) -> None:
    ip = read_only_shell
    table = ip.user_ns["_table"]
    if before is not None:
        ip.run_cell("%sql " + before)  # may fail; the point is what comes after
    message = fails(ip, f"%sql INSERT INTO {table} VALUES (1)")
    assert "read" in message.lower()
    assert "VACUUM" not in message
    assert "READ ONLY" in fails(ip, f"%sql VACUUM {table}")
    use_engine(engine_of(ip))
    try:
        assert one(ip, f"%sql SELECT count(*) FROM {table}") == 0
    finally:
        use_engine(None)


def test_reset_hook_is_installed_once_and_only_on_pooled_engines(database_url: URL) -> None:
    from sqlalchemy import event

    pooled = create_engine(database_url, pool_size=1)
    unpooled = create_engine(database_url, poolclass=NullPool)
    try:
        magic._watch(pooled)
        magic._watch(pooled)
        magic._watch(unpooled)
        assert event.contains(pooled.sync_engine, "reset", magic._reset_on_return)
        assert not event.contains(unpooled.sync_engine, "reset", magic._reset_on_return)
    finally:
        sync_run(pooled.dispose())
        sync_run(unpooled.dispose())


# --- the lexer alone -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT :a, :b_1, :a", ["a", "b_1", "a"]),
        ("SELECT ':a' || E'\\':a' || ':a'':a'", []),
        ("SELECT 'x' /* :a /* :a */ :a */ -- :a\n, :b", ["b"]),
        ("SELECT $$:a$$, $t$ $$ :a $t$, $1, a$b$c, :c", ["c"]),
        ("SELECT x::int, arr[1:2], arr[i:j], arr[:k]", ["k"]),
        ('SELECT ":a", U&":a", U&\'\\0041:a\', :é', ["é"]),
        ("SELECT '\\' :a '", ["a"]),
        ("SELECT :a:: int", ["a"]),
    ],
    ids=[
        "plain",
        "literals",
        "comments",
        "dollars",
        "casts-slices",
        "unicode",
        "backslash",
        "cast",
    ],
)
def test_binds_are_found_where_postgresql_reads_tokens(sql: str, names: list[str]) -> None:
    found = [p.name for p in magic._split(sql) if isinstance(p, magic._Bind)]
    assert found == names
    assert "".join(p if isinstance(p, str) else ":" + p.name for p in magic._split(sql)) == sql


def test_without_standard_conforming_strings_a_backslash_escapes_a_quote() -> None:
    sql = "SELECT 'it\\'s :a', :b"
    assert [p.name for p in magic._split(sql) if isinstance(p, magic._Bind)] == ["a"]
    off = magic._split(sql, standard_strings=False)
    assert [p.name for p in off if isinstance(p, magic._Bind)] == ["b"]
