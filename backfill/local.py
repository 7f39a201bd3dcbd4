"""Local mode for one machine: the embedded stack the job runs against. The database is IMGSEL_DATABASE_URL's, or
the embedded server of IMGSEL_DATA_DIR (the one `make run` uses, attached to when it already runs, so an index build
lands where the gateway searches); Triton is the one answering on IMGSEL_TRITON_HTTP_PORT, or a supervised server
started here on free ports over IMGSEL_MODEL_REPOSITORY. What this starts, it stops; nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pydantic import SecretStr

from gateway.settings import Settings
from tools.database import EmbeddedDatabase
from tools.launcher import free_port, start_supervised_triton, triton_ready


@contextmanager
def local_stack(settings: Settings) -> Iterator[Settings]:
    """`settings` pointing at a ready Triton and database for the job's lifetime."""
    with ExitStack() as started:
        update: dict = {}
        if not settings.database_url.get_secret_value():
            database = EmbeddedDatabase(Path(settings.data_dir))
            was_running = database.running()
            update["database_url"] = SecretStr(database.start())
            if not was_running:
                started.callback(database.stop)
        if not triton_ready(settings):
            ports = {name: free_port() for name in ("triton_http_port", "triton_grpc_port", "triton_metrics_port")}
            triton_settings = settings.model_copy(update=ports)
            started.callback(start_supervised_triton(triton_settings).stop)
            update |= ports | {"triton_grpc_url": f"127.0.0.1:{ports['triton_grpc_port']}"}
        yield settings.model_copy(update=update)
