"""What a result was made with, recorded on every row and part of its idempotency key: the served models (a hash of
the model repository's files) and the categories file (a hash of its bytes). A product is redone exactly when its
manifest row, the models or the categories change."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from contract.categories_file import DEFAULT_CATEGORIES_FILE

# Parameters that name this machine's folders (the venv the python models run in, the project root they import
# from): the same models generated on two machines must get the same version.
MACHINE_PARAMETERS = re.compile(r'^parameters \{ key: "(EXECUTION_ENV_PATH|IMGSEL_PROJECT_ROOT)".*$\n?', re.MULTILINE)
SKIPPED_PARTS = ("__pycache__",)
# TensorRT plans are built per GPU from the repository's model.onnx (which is hashed): same model, machine-specific.
SKIPPED_SUFFIXES = (".plan", ".pyc")
SHORT = 16  # hex digits kept: a version is read by people and compared, never trusted as a signature


@dataclass(frozen=True)
class Versions:
    model: str
    categories: str


def model_version(repository: Path) -> str:
    """sha256 over the files of the repository's models (every folder with a config.pbtxt: paths and contents,
    config.pbtxt less machine paths) in path order; files beside the models (a README) do not count."""
    digest = hashlib.sha256()
    models = [config.parent for config in repository.glob("*/config.pbtxt")]
    if not models:
        raise FileNotFoundError(f"{repository} holds no model (no config.pbtxt): run `make repo` or pass the path")
    files = sorted(
        p
        for model in models
        for p in model.rglob("*")
        if p.is_file() and not any(part in SKIPPED_PARTS for part in p.parts) and p.suffix not in SKIPPED_SUFFIXES
    )
    for path in files:
        content = path.read_bytes()
        if path.name == "config.pbtxt":
            content = MACHINE_PARAMETERS.sub("", content.decode()).encode()
        digest.update(path.relative_to(repository).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()[:SHORT]


def categories_version(path: Path | None = None) -> str:
    return hashlib.sha256((path or DEFAULT_CATEGORIES_FILE).read_bytes()).hexdigest()[:SHORT]


def result_key(fingerprint: str, versions: Versions, mode: str) -> str:
    """The idempotency key of one product's result: its inputs, the versions, and the job mode."""
    return hashlib.sha256(f"{mode}\0{fingerprint}\0{versions.model}\0{versions.categories}".encode()).hexdigest()
