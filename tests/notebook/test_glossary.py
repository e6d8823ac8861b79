"""The glossary: alphabetical, every "Shown in" link true, every link into it resolvable.

"Shown in: [07](07-….ipynb)" claims that notebook 07 *shows* the term at work, so the check
reads what the notebook runs and prints: its code cells and their stored outputs must contain
one of the term's signs below (prose that merely mentions or links the term does not count).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: For each glossary anchor, patterns of which one must appear in a code cell or its output of
#: every notebook the entry says the term is shown in. A new entry needs its signs here.
SIGNS: dict[str, list[str]] = {
    "asyncattrs": [r"AsyncAttrs", r"awaitable_attrs"],
    "autobegin": [r"in_transaction\(\)", r"autobegin"],
    "autogenerate": [r"autogenerate", r"compare_metadata", r"produce_migrations"],
    "commit": [r"\.commit\(\)", r"\bCOMMIT\b"],
    "connection-pool": [r"pool_size", r"max_overflow", r"QueuePool", r"\.pool\b"],
    "connection-sharing": [r"config\.attributes", r"attributes\[\"connection\"\]"],
    "copy": [r"\bCOPY\b", r"copy_records_to_table", r"copy_from_query", r"\"copy\""],
    "deadlock": [r"40P01", r"[Dd]eadlock"],
    "dependency-scope": [r"scope=\"function\"", r"SessionDep"],
    "dtype-backend": [r"dtype_backend", r"\[pyarrow\]", r"\bInt64\b"],
    "eager-loading": [r"selectinload", r"joinedload", r"subqueryload"],
    "engine": [r"create_async_engine", r"create_engine", r"AsyncEngine", r"\.engine\b"],
    "executemany": [r"executemany"],
    "expire-on-commit": [r"expire_on_commit", r"\.expire\("],
    "explain": [r"\bexplain\(", r"\bEXPLAIN\b"],
    "fixture": [r"pytest\.fixture", r"pytest_asyncio\.fixture"],
    "flush": [r"\.flush\(\)", r"autoflush"],
    "gini": [r"[Gg]ini"],
    "having": [r"\.having\(", r"\bHAVING\b"],
    "hot-standby": [r"pg_is_in_recovery", r"standby", r"hot_standby"],
    "identity-map": [r"identity_map", r"expunge(_all)?\(", r"populate_existing"],
    "insertmanyvalues": [r"insertmanyvalues"],
    "isolation-level": [r"isolation_level", r"REPEATABLE READ", r"SERIALIZABLE"],
    "join_transaction_mode": [r"join_transaction_mode"],
    "keyset-pagination": [r"keyset", r"tuple_\("],
    "lazy-loading": [r"lazy=", r"lazyload", r"raiseload"],
    "loader-option": [r"\.options\(\s*(selectinload|joinedload|lazyload|raiseload|subqueryload)"],
    "lost-update": [r"[Ll]ost update", r"barrier\.wait\(\)"],
    "migration": [r"alembic", r"alembic_version"],
    "migration-drift": [r"migrate\.check", r"compare_metadata", r"[Dd]rift"],
    "missinggreenlet": [r"MissingGreenlet"],
    "n-plus-one": [r"count_statements"],
    "naive-datetime": [r"tzinfo", r"offset-naive", r"\bnaive\b"],
    "non-repeatable-read": [r"[Nn]on-repeatable", r"str\(first\), str\(second\)"],
    "offline-mode": [r"--sql", r"as_sql", r"offline"],
    "on-conflict-do-nothing": [r"ON CONFLICT", r"on_conflict_do_nothing"],
    "onupdate": [r"onupdate"],
    "parquet": [r"[Pp]arquet"],
    "passive_deletes": [r"passive_deletes"],
    "pendingrollbackerror": [r"PendingRollbackError"],
    "percentile_cont": [r"percentile_cont"],
    "pre-ping": [r"pool_pre_ping"],
    "replication-lag": [r"replay", r"_lsn\b"],
    "result": [r"\.scalars\(", r"\.scalar_one\(", r"\.unique\(\)", r"\bResult\b"],
    "returning": [r"\bRETURNING\b", r"\.returning\("],
    "row-lock": [r"FOR UPDATE", r"with_for_update"],
    "savepoint": [r"\bSAVEPOINT\b", r"begin_nested"],
    "serialization-failure": [r"40001", r"could not serialize", r"SerializationFailure"],
    "session": [r"AsyncSession", r"\.sessions\(\)", r"async_sessionmaker"],
    "session-timezone": [r"SET TIME ZONE", r"\bTimeZone\b", r"SHOW timezone"],
    "snapshot": [
        r"pg_export_snapshot",
        r"SET TRANSACTION SNAPSHOT",
        r"pg_current_snapshot",
        r"REPEATABLE READ",  # a transaction that keeps its first snapshot
    ],
    "sqlstate": [r"sqlstate", r"SQLSTATE", r"pgcode"],
    "synchronize_session": [
        r"synchronize_session",
        r"can't compare offset-naive and offset-aware",  # the "evaluate" strategy failing
    ],
    "torn-read": [r"\btorn\b"],
    "transaction-pooling": [r"[Pp]g[Bb]ouncer", r"pool_mode"],
    "unit-of-work": [r"\.commit\(\)", r"\.rollback\(\)"],
    "wal": [r"\bWAL\b", r"_wal_", r"_lsn\b"],
}

NOT_SHOWN = "Not shown in a notebook yet."
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
_SHOWN_IN = re.compile(r"^Shown in: (.+)$", re.MULTILINE)
_NOTEBOOK_LINK = re.compile(r"\[(\d\d)\]\((\d\d-[a-z0-9-]+\.ipynb)\)")
_GLOSSARY_LINK = re.compile(r"\]\(glossary\.ipynb#([^)\s]+)\)")
_SELF_LINK = re.compile(r"\]\(#([^)\s]+)\)")


@dataclass(frozen=True)
class Entry:
    """One glossary term: its heading, anchor, and the notebooks it says it is shown in."""

    heading: str
    anchor: str
    body: str
    shown_in: tuple[str, ...]


def anchor_of(heading: str) -> str:
    """The link anchor of a glossary heading: lower-case, spaces as ``-`` (as Jupyter makes)."""
    return heading.strip().replace(" ", "-")


def entries(folder: Path = NOTEBOOKS_DIR) -> list[Entry]:
    """The glossary's entries, in their order."""
    found = []
    for cell in nbformat.read(folder / "glossary.ipynb", as_version=4).cells:
        heading = _HEADING.search(cell.source)
        if cell.cell_type != "markdown" or heading is None:
            continue
        shown = _SHOWN_IN.search(cell.source)
        links = _NOTEBOOK_LINK.findall(shown[1]) if shown else []
        for number, target in links:
            assert target.startswith(number), f"{heading[1]}: [{number}] links {target}"
        found.append(
            Entry(heading[1], anchor_of(heading[1]), cell.source, tuple(t for _, t in links))
        )
    return found


def code_and_outputs(path: Path) -> str:
    """Everything a notebook runs and prints: code cells' sources and their stored outputs."""
    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
            parts.append(f"{output.get('ename', '')}: {output.get('evalue', '')}")
    return "\n".join(parts)


def shows(anchor: str, text: str) -> bool:
    """Whether ``text`` (a notebook's code and outputs) shows the term of ``anchor``."""
    return any(re.search(sign, text) for sign in SIGNS[anchor])


def wrong_shown_in(folder: Path = NOTEBOOKS_DIR) -> list[str]:
    """One line per "Shown in" link whose notebook does not show the term in code or output."""
    texts: dict[str, str] = {}
    problems = []
    for entry in entries(folder):
        for target in entry.shown_in:
            if not (folder / target).exists():
                problems.append(f"{entry.heading}: {target} does not exist")
                continue
            if target not in texts:
                texts[target] = code_and_outputs(folder / target)
            if not shows(entry.anchor, texts[target]):
                problems.append(
                    f"{entry.heading}: {target} shows none of {SIGNS[entry.anchor]} in its code"
                    " or outputs"
                )
    return problems


def notebooks_showing(anchor: str, folder: Path = NOTEBOOKS_DIR) -> list[str]:
    """The numbered notebooks whose code or outputs show the term (for writing "Shown in")."""
    return [
        path.name
        for path in sorted(folder.glob("[0-9][0-9]-*.ipynb"))
        if shows(anchor, code_and_outputs(path))
    ]


def missing_anchors(folder: Path = NOTEBOOKS_DIR) -> list[str]:
    """One line per link to a glossary anchor (from any notebook) that has no entry."""
    anchors = {entry.anchor for entry in entries(folder)}
    problems = []
    for path in sorted(folder.glob("*.ipynb")):
        pattern = _SELF_LINK if path.name == "glossary.ipynb" else _GLOSSARY_LINK
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for anchor in pattern.findall(cell.source):
                    if anchor not in anchors:
                        problems.append(f"{path.name}: glossary.ipynb#{anchor} has no entry")
    return problems


def test_entries_are_alphabetical() -> None:
    headings = [entry.heading for entry in entries()]
    assert headings == sorted(headings, key=str.lower)


def test_every_entry_has_signs_and_says_where_it_is_shown() -> None:
    found = entries()
    assert {entry.anchor for entry in found} == set(SIGNS)
    for entry in found:
        assert entry.shown_in or NOT_SHOWN in entry.body, entry.heading


def test_every_shown_in_link_points_at_a_notebook_that_shows_the_term() -> None:
    assert wrong_shown_in() == []


def test_every_glossary_link_in_the_notebooks_has_an_entry() -> None:
    assert missing_anchors() == []


def test_the_check_refuses_a_notebook_that_only_mentions_a_term(tmp_path: Path) -> None:
    glossary = nbformat.v4.new_notebook()
    glossary.cells = [
        nbformat.v4.new_markdown_cell("## savepoint\n\nA savepoint.\n\nShown in: [01](01-a.ipynb).")
    ]
    nbformat.write(glossary, tmp_path / "glossary.ipynb")
    mentions = nbformat.v4.new_notebook()
    mentions.cells = [
        nbformat.v4.new_markdown_cell("A [savepoint](glossary.ipynb#savepoint), SAVEPOINT."),
        nbformat.v4.new_code_cell("await db.commit()"),
    ]
    nbformat.write(mentions, tmp_path / "01-a.ipynb")
    assert wrong_shown_in(tmp_path) == [
        rf"savepoint: 01-a.ipynb shows none of {SIGNS['savepoint']} in its code or outputs"
    ]
    mentions.cells.append(nbformat.v4.new_code_cell("async with db.begin_nested(): ..."))
    nbformat.write(mentions, tmp_path / "01-a.ipynb")
    assert wrong_shown_in(tmp_path) == []
