"""Reads the categories file from disk (the one place that does): the packaged `contract/categories.toml`, or the
file named by $IMGSEL_CATEGORIES_FILE."""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path

from contract.categories import Catalog, CategoryConfigError, parse_catalog

DEFAULT_CATEGORIES_FILE = Path(__file__).with_name("categories.toml")
CATEGORIES_FILE_ENV = "IMGSEL_CATEGORIES_FILE"


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Load and validate a categories file.

    Without `path`, reads $IMGSEL_CATEGORIES_FILE or the packaged file, cached per resolved path; an explicit
    path is always re-read (tests and tools that edit the file).
    """
    if path is not None:
        return _read_catalog(Path(path))
    return _load_cached(Path(os.environ.get(CATEGORIES_FILE_ENV) or DEFAULT_CATEGORIES_FILE))


@lru_cache(maxsize=4)
def _load_cached(path: Path) -> Catalog:
    return _read_catalog(path)


def _read_catalog(path: Path) -> Catalog:
    with path.open("rb") as file:
        try:
            return parse_catalog(tomllib.load(file))
        except ValueError as error:  # TOML syntax or content: say which file
            raise CategoryConfigError(f"{path}: {error}") from error
