"""Database engines for the ledger: SQLite (default, WAL) and PostgreSQL (psycopg 3), set up for short, serialised
write transactions."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

DEFAULT_URL = "sqlite:///budgetflow.db"


def resolve_url(url: str | Path) -> str:
    """The URL as given, with a SQLite file (a plain path, or sqlite:///relative) resolved to its absolute path: the
    same URL must name the same ledger from any directory (a resume from elsewhere must never open a fresh ledger
    with a fresh cap). Other URLs are returned unchanged."""
    url = str(url)
    if "://" not in url:
        url = f"sqlite:///{url}"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not parsed.database.startswith("file:"):
        resolved = str(Path(parsed.database).expanduser().resolve())
        return parsed.set(database=resolved).render_as_string(hide_password=False)
    return url


def normalize_url(url: str | Path) -> str:
    """`resolve_url`, with `postgresql://` URLs driven by psycopg 3."""
    url = resolve_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_path(url: str) -> str | None:
    """The file behind a SQLite URL, or None for in-memory databases and other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def make_engine(url: str) -> Engine:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return create_engine(url, pool_size=8, max_overflow=64, pool_pre_ping=True)
    raise ValueError(f"unsupported ledger URL {url!r}: use sqlite:///FILE or postgresql://USER@HOST/DB")


def _sqlite_engine(url: str) -> Engine:
    memory = sqlite_path(url) is None
    kwargs = dict(connect_args={"timeout": 60, "check_same_thread": False})
    if memory:
        kwargs["poolclass"] = StaticPool
    else:
        kwargs.update(pool_size=8, max_overflow=64)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions would defer the write lock).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (not a power cut) and keeps commits fast.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the database write lock up front, so check-then-update is atomic across processes.
        immediate = conn.get_execution_options().get("budgetflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
