"""Catalog-scale batch work on Ray Data: curate whole catalogs once (and again when models change) and build the
visual-search index, calling Triton directly with the gateway's own services and pure decisions; `plan` sizes a run
from a sample. `python -m backfill --help`."""
