"""Schema migrations of the state store (Alembic, scripts in gateway/stores/migrations/versions), applied by

    python -m gateway.stores.migrate upgrade [REVISION]     (default: head; idempotent)
    python -m gateway.stores.migrate downgrade REVISION     (`base` drops everything imgsel created)
    python -m gateway.stores.migrate current

against IMGSEL_DATABASE_URL (or --url). The gateway runs `upgrade head` at start-up unless IMGSEL_DATABASE_MIGRATE is
false; concurrent upgrades (several replicas starting at once) serialise on a PostgreSQL advisory lock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Held (session-level) while migrating: pg_advisory_lock key, an arbitrary constant owned by imgsel.
MIGRATION_LOCK = 7_210_110_115_101_108


def sqlalchemy_url(url: str) -> str:
    """A libpq URL (postgresql://, postgres://) as SQLAlchemy's psycopg 3 dialect URL."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    if url.startswith("postgresql+psycopg://"):
        return url
    raise ValueError("IMGSEL_DATABASE_URL must be a postgresql:// URL")


def engine(url: str, connect_timeout_s: float) -> Engine:
    """A one-connection engine whose connect gives up after `connect_timeout_s` (libpq waits forever by default)."""
    timeout = max(2, int(connect_timeout_s))  # libpq: whole seconds, at least 2
    return create_engine(sqlalchemy_url(url), poolclass=NullPool, connect_args={"connect_timeout": timeout})


def alembic_config(url: str, connect_timeout_s: float) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # attributes, not the ini's options: a password must not go through %-interpolation
    config.attributes["engine"] = engine(url, connect_timeout_s)
    return config


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def upgrade(url: str, revision: str = "head", connect_timeout_s: float = 10.0) -> None:
    command.upgrade(alembic_config(url, connect_timeout_s), revision)


def downgrade(url: str, revision: str, connect_timeout_s: float = 10.0) -> None:
    command.downgrade(alembic_config(url, connect_timeout_s), revision)


def current_revision(url: str, connect_timeout_s: float = 10.0) -> str | None:
    one = engine(url, connect_timeout_s)
    try:
        with one.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        one.dispose()


def main(argv: list[str] | None = None) -> int:
    from gateway.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="database URL (default: IMGSEL_DATABASE_URL)")
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade")
    down.add_argument("revision")
    sub.add_parser("current")
    args = parser.parse_args(argv)
    url = args.url or Settings.from_env().database_url.get_secret_value()
    if not url:
        print("no database: set IMGSEL_DATABASE_URL or pass --url", file=sys.stderr)
        return 2
    if args.action == "upgrade":
        upgrade(url, args.revision)
    elif args.action == "downgrade":
        downgrade(url, args.revision)
    print(f"schema revision: {current_revision(url) or 'base'} (head: {head_revision()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
