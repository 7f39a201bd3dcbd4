"""The job's output folder (local or object storage): Parquet part files written whole or not at all.

    <out>/curate/part-<batch>.parquet      one row per product (RESULT_SCHEMA)
    <out>/index/part-<batch>.parquet       one row per product with its images' embeddings (INDEX_SCHEMA)
    <out>/dead_letter/<run>/part-<batch>.parquet   products that kept failing, with the error (DEAD_LETTER_SCHEMA)

A batch's part is written once every product of the batch is done, to a temporary name and then renamed, so a
killed run leaves whole parts (and temporary files that readers ignore): its products are done, the batch in flight is
not. The set of done keys is read back from the parts (the `key` column only).
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from contract.tensors import EMBEDDING_DIM

COMMON = [
    ("key", pa.string()),
    ("product_id", pa.string()),
    ("input_fingerprint", pa.string()),
    ("model_version", pa.string()),
    ("categories_version", pa.string()),
    ("run_id", pa.string()),
    ("worker", pa.string()),
    ("batch", pa.string()),
    ("batch_seconds", pa.float64()),  # the batch's wall time in its worker (plan: throughput per worker)
    ("attempts", pa.int32()),
    ("processed_at", pa.timestamp("ms", tz="UTC")),
]
RESULT_SCHEMA = pa.schema(
    COMMON
    + [
        ("category", pa.string()),
        ("category_source", pa.string()),
        ("images", pa.int32()),
        ("selected", pa.list_(pa.string())),
        ("dropped", pa.int32()),  # rejected, failed or cut by max_images
        ("duplicates", pa.int32()),
        ("hero_changed", pa.bool_()),
        ("image_set_changed", pa.bool_()),
        ("response", pa.string()),  # the /v1/select response body, as JSON
    ]
)
INDEX_SCHEMA = pa.schema(
    COMMON
    + [
        ("images", pa.int32()),
        ("image_ids", pa.list_(pa.string())),
        ("partitions", pa.list_(pa.string())),
        ("embeddings", pa.list_(pa.list_(pa.float32(), EMBEDDING_DIM))),
        ("failed", pa.list_(pa.string())),  # "<image id>:<reason code>"
    ]
)
DEAD_LETTER_SCHEMA = pa.schema(COMMON + [("error", pa.string()), ("product", pa.string())])
SCHEMAS = {"curate": RESULT_SCHEMA, "index": INDEX_SCHEMA}
DEAD_LETTER = "dead_letter"


def filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    return fs.FileSystem.from_uri(uri) if "://" in uri else (fs.LocalFileSystem(), uri)


def write_part(folder: str, name: str, rows: list[dict], schema: pa.Schema) -> str:
    """Write rows as `<folder>/<name>.parquet`, whole or not at all; returns the path."""
    filesystem_, base = filesystem(folder)
    filesystem_.create_dir(base, recursive=True)
    final = f"{base}/{name}.parquet"
    temporary = f"{base}/.{name}.{uuid.uuid4().hex}.tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), temporary, filesystem=filesystem_)
    filesystem_.move(temporary, final)  # a rename on local disks; object stores publish an object whole anyway
    return final


def part_files(folder: str) -> tuple[fs.FileSystem, list[str]]:
    filesystem_, base = filesystem(folder)
    info = filesystem_.get_file_info(fs.FileSelector(base, allow_not_found=True, recursive=True))
    paths = sorted(f.path for f in info if f.type == fs.FileType.File and f.base_name.endswith(".parquet"))
    return filesystem_, paths


def read_parts(folder: str, columns: list[str] | None = None) -> pa.Table | None:
    """Every part under `folder` as one table (None when there is none)."""
    filesystem_, paths = part_files(folder)
    if not paths:
        return None
    return pa.concat_tables([pq.read_table(p, columns=columns, filesystem=filesystem_) for p in paths])


def done_keys(folder: str) -> set[str]:
    table = read_parts(folder, ["key"])
    return set() if table is None else set(table.column("key").to_pylist())
