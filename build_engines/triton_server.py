"""Fetch the embedded Triton server: the `tritonserver` binary and python backend from the nvidia-pytriton wheel.

Only the server files are unpacked (PyTriton's Python API is not installed: it would pin numpy and is not used).

    python -m build_engines.triton_server [--dest .cache/tritonserver]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "nvidia-pytriton==0.7.0"
MEMBERS = ("pytriton/tritonserver/", "nvidia_pytriton.libs/")
# The one description of the unpacked wheel's layout (the launcher and the tests read it from here; the default home
# is also IMGSEL_TRITON_HOME's default in gateway/settings.py and TRITON in the Makefile).
DEFAULT_DEST = Path(__file__).resolve().parent.parent / ".cache" / "tritonserver"


def server_root(home: Path) -> Path:
    """The server tree inside the unpacked wheel (bin/, backends/, python_backend_stubs/)."""
    return home / "pytriton" / "tritonserver"


def server_binary(home: Path) -> Path:
    return server_root(home) / "bin" / "tritonserver"


def bundled_libs(home: Path) -> Path:
    """Shared libraries the wheel ships beside the server (auditwheel's folder)."""
    return home / "nvidia_pytriton.libs"


def unpack(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(MEMBERS) or info.is_dir():
                continue
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as out:
                out.write(source.read())
            # zipfile drops permissions; the server and the stubs must stay executable.
            executable = (info.external_attr >> 16) & 0o111
            target.chmod(0o755 if executable else 0o644)


def fetch(dest: Path = DEFAULT_DEST) -> Path:
    binary = server_binary(dest)
    if binary.is_file():
        return binary
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("nvidia_pytriton-*.whl"))
        unpack(wheel, dest)
    if not binary.is_file():
        raise SystemExit(f"{WHEEL} did not contain {binary.relative_to(dest)}")
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    print(f"tritonserver at {fetch(args.dest)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
