"""Bulk load of one visual-search partition (the catalog backfill's index build): COPY into a bare table, the indexes
built once over the loaded rows, then swapped in for the partition in one short transaction.

Row-by-row inserts (`SearchIndex.add`) keep the HNSW graph current image by image (~350 images/s on 2 cores); a first
load of millions is many times faster as COPY into a table without indexes and one index build after it (README,
"Scaling past one node"). The staging table gets exactly the parent's indexes, read from the catalog
(`pg_get_indexdef` of every index of `search_items`), so the migration stays the one copy of the schema, and ATTACH
then adopts them instead of building new ones.

Images already in the partition that this load does not carry (added through `POST /v1/index`) are copied into the
staging table before the index build, and those added or replaced while the load ran are copied again inside the swap,
so a load replaces the images it carries and keeps the others. An image id the load carries is removed from every other
partition (it moved), as `SearchIndex.add` does. Synchronous psycopg: a batch job's driver, no pool, no statement
timeout (an index build takes minutes).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg import sql

from gateway.stores.search_index import PARTITIONS_LOCK, partition_table

PARENT = "search_items"
COLUMNS = ("partition", "image_id", "product_id", "embedding")


def staging_table(name: str) -> str:
    return partition_table(name) + "_load"


def index_statements(conn: psycopg.Connection, table: str, prefix: str) -> list[str]:
    """CREATE INDEX statements of the parent's indexes (primary key included), aimed at `table`, named `prefix` and a
    number (index names are schema-wide and outlive the table's rename: each load's names are new)."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass ORDER BY c.relname",
        (PARENT,),
    ).fetchall()
    statements = []
    for number, (_, definition) in enumerate(rows):
        # "CREATE [UNIQUE] INDEX <name> ON ONLY public.search_items USING ..." -> the staging table's own index
        head, _, tail = definition.partition(" ON ONLY ")
        _, _, using = tail.partition(" USING ")
        head = re.sub(r"INDEX \S+$", "INDEX " + sql.Identifier(f"{prefix}{number}").as_string(conn), head)
        statements.append(f"{head} ON {sql.Identifier(table).as_string(conn)} USING {using}")
    return statements


def copy_rows(conn: psycopg.Connection, table: str, name: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> int:
    """COPY (product_id, image_id, embedding) rows into `table` under partition `name`; the last row of an image id
    wins, as in SearchIndex.add."""
    latest = {image_id: (product_id, embedding) for product_id, image_id, embedding in rows}
    statement = sql.SQL("COPY {} (partition, image_id, product_id, embedding) FROM STDIN").format(sql.Identifier(table))
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for image_id, (product_id, embedding) in latest.items():
            copy.write_row((name, image_id, product_id, HalfVector(np.asarray(embedding, dtype=np.float32))))
    return len(latest)


def load_partition(url: str, name: str, rows: Iterable[tuple[str, str, np.ndarray]]) -> int:
    """Replace partition `name`'s images by `rows` (product_id, image_id, embedding), keeping the partition's images
    the rows do not carry; returns the partition's image count after the load."""
    stage, final = staging_table(name), partition_table(name)
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        ident = sql.Identifier(stage)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))  # a killed earlier load's leftover
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE search_items INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)"
            ).format(ident)
        )
        started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        copy_rows(conn, stage, name, rows)
        existing = conn.execute("SELECT table_name FROM search_partitions WHERE name = %s", (name,)).fetchone()
        if existing:
            carry_over(conn, stage, existing[0])
        conn.execute(sql.SQL("ANALYZE {}").format(ident))
        # The index build, once, after the load.
        for statement in index_statements(conn, stage, f"{final}_{uuid.uuid4().hex[:6]}_"):
            conn.execute(statement)
        with conn.transaction():
            return swap_in(conn, name, stage, final, started)


def carry_over(conn: psycopg.Connection, stage: str, old: str, since=None) -> None:
    """Copy the old partition's images that the staging table lacks (all of them, or those added after `since`)."""
    query = sql.SQL(
        "INSERT INTO {stage} SELECT o.* FROM {old} o WHERE {recent} "
        "NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.image_id = o.image_id)"
    ).format(
        stage=sql.Identifier(stage),
        old=sql.Identifier(old),
        recent=sql.SQL("o.added_at >= %s AND" if since is not None else ""),
    )
    conn.execute(query, (since,) if since is not None else None)


def swap_in(conn: psycopg.Connection, name: str, stage: str, final: str, started) -> int:
    """Inside one transaction: the old partition out (its late additions carried over), the staging table in under
    the partition's name, moved image ids out of other partitions, and search_partitions' counts set."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (PARTITIONS_LOCK,))
    existing = conn.execute("SELECT table_name FROM search_partitions WHERE name = %s FOR UPDATE", (name,)).fetchone()
    if existing:
        old = existing[0]
        conn.execute(sql.SQL("ALTER TABLE search_items DETACH PARTITION {}").format(sql.Identifier(old)))
        carry_over(conn, stage, old, since=started)
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(old)))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(stage), sql.Identifier(final)))
    conn.execute(
        sql.SQL("ALTER TABLE search_items ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.Identifier(final), sql.Literal(name)
        )
    )
    moved = conn.execute(
        sql.SQL(
            "DELETE FROM search_items s USING {} t WHERE s.image_id = t.image_id AND s.partition <> %s "
            "RETURNING s.partition"
        ).format(sql.Identifier(final)),
        (name,),
    ).fetchall()
    for (other,) in moved:
        conn.execute("UPDATE search_partitions SET images = images - 1 WHERE name = %s", (other,))
    images = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(final))).fetchone()[0]
    conn.execute(
        "INSERT INTO search_partitions (name, table_name, images) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET table_name = EXCLUDED.table_name, images = EXCLUDED.images",
        (name, final, images),
    )
    return images
