"""The house plan's import directions (ARCHITECTURE.md), checked by parsing every module's imports with ast.

Every import counts, including those inside functions (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = (
    "contract",
    "runtime",
    "gateway",
    "preprocessing",
    "build_engines",
    "training",
    "evaluation",
    "loadtest",
    "tools",
    "backfill",
)
STDLIB = sys.stdlib_module_names
# Standard-library modules that do I/O or concurrency: a pure decision never needs them.
STDLIB_IO = frozenset(
    {"asyncio", "http", "io", "logging", "os", "pathlib", "shutil", "socket", "sqlite3", "subprocess", "tempfile",
     "threading", "urllib", "multiprocessing", "concurrent", "tomllib", "pickle", "ssl", "select", "signal"}
)  # fmt: skip


def modules(package: str, root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path, root: Path = ROOT) -> set[str]:
    """Every module name `path` imports (absolute names; relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            # `from gateway import hashing` imports gateway.hashing
            names.update(f"{module}.{alias.name}" for alias in node.names if top(module) in PROJECT_PACKAGES)
    return names


def top(name: str) -> str:
    return name.split(".")[0]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(package: str, allowed, root: Path = ROOT) -> list[str]:
    found = []
    for path in modules(package, root):
        for name in sorted(imported(path, root)):
            if not allowed(name):
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_every_package_is_checked():
    assert all((ROOT / package).is_dir() for package in PROJECT_PACKAGES)
    assert modules("contract") and modules("gateway/decisions") and modules("build_engines/triton_python")


def test_contract_imports_only_the_standard_library():
    assert violations("contract", lambda n: top(n) in STDLIB or within(n, "contract")) == []


def test_runtime_imports_only_the_standard_library():
    """The gateway image and the python-backend stubs both import it: nothing of the project, no third party."""
    assert violations("runtime", lambda n: top(n) in STDLIB or within(n, "runtime")) == []


def _pure(name: str) -> bool:
    if top(name) in STDLIB:
        return top(name) not in STDLIB_IO
    return top(name) == "numpy" or within(name, "contract") or within(name, "gateway.decisions")


def test_decisions_are_pure():
    """gateway/decisions: contract, numpy, the standard library less I/O, and gateway.hashing's pure building blocks;
    never fastapi, tritonclient, httpx, a database library or the stores."""

    def allowed(name: str) -> bool:
        return _pure(name) or within(name, "gateway.hashing")

    assert violations("gateway/decisions", allowed) == []


HASH_CODE = ("preprocessing.foreground", "preprocessing.perceptual", "preprocessing.colour")


def test_hashing_is_pure():
    """gateway.hashing is what decisions may lean on, so it is held to the same rule, plus in-memory image maths
    (PIL resampling, scipy's DCT: imagehash's exact definitions) and the hashing code it shares with the preprocess
    model (preprocessing's foreground mask, perceptual hashes and colour histogram, held to the same rule)."""
    hashing = [p for p in modules("gateway") if p.relative_to(ROOT).parts[1].startswith("hashing")]
    assert hashing, "gateway.hashing not found"
    shared = [ROOT / (name.replace(".", "/") + ".py") for name in HASH_CODE]
    for path in hashing + shared:
        for name in imported(path):
            assert (
                _pure(name)
                or top(name) in ("PIL", "scipy")
                or within(name, "gateway.hashing")
                or any(within(name, module) for module in HASH_CODE)
            ), f"{path.relative_to(ROOT)} imports {name}"


# The project packages the gateway's image ships (preprocessing: only its pure modules, checked elsewhere); any other
# project package, a new one included, and the heavy ML libraries stay out of the gateway.
GATEWAY_IMAGE_PACKAGES = ("contract", "runtime", "preprocessing", "gateway")
FORBIDDEN_IN_GATEWAY = (*(p for p in PROJECT_PACKAGES if p not in GATEWAY_IMAGE_PACKAGES), "ray", "torch", "onnx")


def test_gateway_serves_only():
    assert violations("gateway", lambda n: top(n) not in FORBIDDEN_IN_GATEWAY) == []


# The state store's client libraries (PostgreSQL driver and pool, pgvector, migrations; sqlite3 for the one-off import
# of the former SQLite stores): only the database client and the stores use them. Services and routes see the stores'
# interfaces and StoreUnavailable, so swapping the database touches gateway/stores and gateway/clients/database.py only.
DATABASE_LIBRARIES = frozenset({"psycopg", "psycopg_pool", "pgvector", "alembic", "sqlalchemy", "sqlite3"})


def talks_to_the_database(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return relative == "gateway/clients/database.py" or relative.startswith("gateway/stores/")


def test_only_the_database_client_and_the_stores_import_database_libraries():
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules("gateway")
        if not talks_to_the_database(path)
        for name in sorted(imported(path))
        if top(name) in DATABASE_LIBRARIES
    ]
    assert found == []
    used = {top(name) for path in modules("gateway") if talks_to_the_database(path) for name in imported(path)}
    assert DATABASE_LIBRARIES <= used, f"no longer used, drop from DATABASE_LIBRARIES: {DATABASE_LIBRARIES - used}"


# The pure preprocessing modules the gateway shares (never the DALI pipeline or its runner).
SHARED_PREPROCESSING = (*HASH_CODE, "preprocessing.image_header")


def test_gateway_imports_only_the_shared_preprocessing_modules():
    def allowed(name: str) -> bool:
        return top(name) != "preprocessing" or any(within(name, shared) for shared in SHARED_PREPROCESSING)

    assert violations("gateway", allowed) == []


def test_image_header_is_pure_standard_library():
    """It runs on every image before anything else: no I/O, no third-party parser, only the contract's codes."""
    for name in imported(ROOT / "preprocessing" / "image_header.py"):
        assert (top(name) in STDLIB and top(name) not in STDLIB_IO) or within(name, "contract"), name


@pytest.mark.parametrize("package", ["build_engines", "training", "preprocessing"])
def test_build_side_never_imports_the_gateway(package):
    assert violations(package, lambda n: top(n) not in ("gateway", "tools")) == []


def test_backfill_runs_the_gateway_not_the_build_side():
    """backfill: the gateway's services and stores, the launcher's local stack, Ray; never the build or training side
    (its workers run in the gateway's image plus Ray), nor the benchmarks."""
    forbidden = ("build_engines", "training", "evaluation", "loadtest", "torch", "onnx", "preprocessing")
    assert violations("backfill", lambda n: top(n) not in forbidden) == []


def test_python_backend_model_code_never_imports_the_gateway():
    assert violations("build_engines/triton_python", lambda n: top(n) not in ("gateway", "tools")) == []


def test_a_violation_is_reported(tmp_path):
    """The checker itself: lazy and relative imports of I/O in a decision module are caught."""
    package = tmp_path / "gateway" / "decisions"
    package.mkdir(parents=True)
    (package / "probe.py").write_text(
        "from . import selection\nimport psycopg\n\n"
        "def f():\n    import httpx\n    from gateway.stores import placeholders\n"
    )
    found = violations("gateway/decisions", _pure, root=tmp_path)
    assert found == [
        "gateway/decisions/probe.py imports gateway.stores",
        "gateway/decisions/probe.py imports gateway.stores.placeholders",
        "gateway/decisions/probe.py imports httpx",
        "gateway/decisions/probe.py imports psycopg",
    ]
    assert "gateway.decisions.selection" in imported(package / "probe.py", tmp_path)
