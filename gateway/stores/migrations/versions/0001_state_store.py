"""The state store: placeholder library, vote exemplars, visual-search index (PostgreSQL with pgvector >= 0.7).

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# contract.tensors.EMBEDDING_DIM when this migration was written; a migration never changes, so it is spelled out.
DIM = 1280

UPGRADE = f"""
CREATE EXTENSION IF NOT EXISTS vector;

-- Library of known placeholder images, matched by pHash in each gateway's cache of it.
CREATE TABLE placeholders (
    id text PRIMARY KEY,
    phash bigint NOT NULL,              -- 64-bit pHash: the signed integer of the same bits
    width integer NOT NULL,
    height integer NOT NULL,
    supplier text,
    added_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A version per cached table, replaced in the same transaction as any change to it: a gateway compares it with the
-- version its cache was loaded at before each use, so a change made through any replica (or by hand) is seen on
-- the next request everywhere. A random 63-bit value, not a counter: a database restored from a backup, or
-- re-created, would count again through versions a gateway has already cached with other contents.
CREATE TABLE state_versions (
    name text PRIMARY KEY,
    version bigint NOT NULL
);
INSERT INTO state_versions (name, version) VALUES ('placeholders', 0);

CREATE FUNCTION imgsel_placeholders_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE state_versions SET version = floor(random() * 9223372036854775807)::bigint WHERE name = 'placeholders';
    RETURN NULL;
END
$$;
CREATE TRIGGER placeholders_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON placeholders
    FOR EACH STATEMENT EXECUTE FUNCTION imgsel_placeholders_changed();

-- The vote's exemplars: a bounded ring per category of recently accepted images' backbone embeddings.
CREATE TABLE exemplars (
    seq bigserial PRIMARY KEY,          -- insertion order: larger is more recent
    category text NOT NULL,
    product_id text NOT NULL,
    image_id text NOT NULL,
    embedding halfvec({DIM}) NOT NULL,  -- L2-normalised
    added_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Kept in the row (2.5 KB fits a page), not moved out of line to TOAST as pgvector's types are by default: a scan
-- then reads each vector with its row (exact search 3.5-4x faster at 100k, BENCHMARKS.md).
ALTER TABLE exemplars ALTER COLUMN embedding SET STORAGE PLAIN;
CREATE INDEX exemplars_recent ON exemplars (category, seq DESC);
CREATE INDEX exemplars_product ON exemplars (category, product_id);

-- The visual-search index, one list partition per top-level category (the cascade's partitions; created by the
-- gateway on a category's first image). Indexes declared here are created on every partition.
CREATE TABLE search_items (
    partition text NOT NULL,
    image_id text NOT NULL,
    product_id text NOT NULL,
    embedding halfvec({DIM}) NOT NULL,  -- L2-normalised
    added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partition, image_id)
) PARTITION BY LIST (partition);
ALTER TABLE search_items ALTER COLUMN embedding SET STORAGE PLAIN;  -- in the row, as exemplars; partitions inherit it
CREATE INDEX search_items_image ON search_items (image_id);
CREATE INDEX search_items_product ON search_items (product_id);
CREATE INDEX search_items_embedding ON search_items USING hnsw (embedding halfvec_cosine_ops)
    WITH (m = 16, ef_construction = 64);

-- One row per partition: its table and its exact size (kept in the transaction of every change), which the
-- cascade needs (empty partitions are not searched) and which picks exact scan or HNSW.
CREATE TABLE search_partitions (
    name text PRIMARY KEY,
    table_name text NOT NULL UNIQUE,
    images bigint NOT NULL DEFAULT 0 CHECK (images >= 0)
);
"""

DOWNGRADE = """
DROP TABLE search_partitions;
DROP TABLE search_items;  -- and every partition
DROP TABLE exemplars;
DROP TRIGGER placeholders_changed ON placeholders;
DROP FUNCTION imgsel_placeholders_changed();
DROP TABLE state_versions;
DROP TABLE placeholders;
"""  # the vector extension stays: other schemas of the database may use it


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
