"""Alembic environment: online migrations only, one connection, under imgsel's advisory lock (replicas that start
together migrate one after the other; the later ones find the schema at head and do nothing)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gateway.stores.migrate import MIGRATION_LOCK

engine = context.config.attributes["engine"]
try:
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
        try:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
finally:
    engine.dispose()
