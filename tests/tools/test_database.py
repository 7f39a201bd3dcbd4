"""The embedded PostgreSQL (tools.database) and the launcher's rule for when to start it."""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from gateway.settings import Settings
from tools.database import EmbeddedDatabase, main
from tools.launcher import embedded_database


def server_version(url: str) -> tuple[str, str]:
    with psycopg.connect(url) as db:
        version = db.execute("SHOW server_version").fetchone()[0]
        db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        vector = db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    return version, vector


def test_two_data_directories_run_side_by_side_on_their_own_sockets(tmp_path):
    first, second = EmbeddedDatabase(tmp_path / "one"), EmbeddedDatabase(tmp_path / "two")
    try:
        url_one, url_two = first.start(), second.start()
        assert url_one != url_two
        assert f"host={tmp_path / 'one' / 'postgres'}" in url_one  # a Unix socket in its data directory, no TCP port
        assert server_version(url_one) == ("18.4", "0.8.5") and server_version(url_two)[1] == "0.8.5"
        with psycopg.connect(url_one, autocommit=True) as db:
            db.execute("CREATE TABLE only_in_one (x int)")
        with psycopg.connect(url_two) as db:
            assert db.execute("SELECT to_regclass('only_in_one')").fetchone()[0] is None
    finally:
        first.stop()
        second.stop()
    assert not first.running() and not second.running()


def test_data_survive_a_stop_and_a_start_in_the_same_process(tmp_path):
    database = EmbeddedDatabase(tmp_path)
    try:
        with psycopg.connect(database.start(), autocommit=True) as db:
            db.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        database.stop()
        assert not database.running()
        with psycopg.connect(database.start()) as db:
            assert db.execute("SELECT x FROM kept").fetchone()[0] == 7
    finally:
        database.stop()


def test_a_killed_server_is_seen_as_stopped_and_starts_again(tmp_path):
    """What the launcher's watch loop relies on: running() turns false after kill -9, start() recovers the data."""
    database = EmbeddedDatabase(tmp_path)
    try:
        with psycopg.connect(database.start(), autocommit=True) as db:
            db.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (1)")
        os.kill(database.pid(), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while database.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not database.running()
        with psycopg.connect(database.start()) as db:  # crash recovery replays the WAL
            assert db.execute("SELECT x FROM kept").fetchone()[0] == 1
    finally:
        database.stop()


def test_command_line_url_and_stop(tmp_path, capsys):
    assert main(["url", "--data-dir", str(tmp_path)]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("postgresql://") and server_version(url)[1] == "0.8.5"
    assert main(["stop", "--data-dir", str(tmp_path)]) == 0
    assert not EmbeddedDatabase(tmp_path).running()


@pytest.mark.parametrize(
    ("process_env", "extra_env", "settings_url", "expected"),
    [
        ({}, {}, "", "settings"),  # nothing given: the embedded server under the settings' data dir
        ({}, {"IMGSEL_DATA_DIR": "/x/given"}, "", "/x/given"),  # the gateway's data dir wins, as it reads it
        ({"IMGSEL_DATABASE_URL": "postgresql://db/imgsel"}, {}, "", None),
        ({}, {"IMGSEL_DATABASE_URL": "postgresql://db/imgsel"}, "", None),
        ({}, {}, "postgresql://db/imgsel", None),
    ],
)
def test_launcher_starts_the_embedded_database_only_without_a_url(
    monkeypatch, tmp_path, process_env, extra_env, settings_url, expected
):
    monkeypatch.delenv("IMGSEL_DATABASE_URL", raising=False)
    monkeypatch.delenv("IMGSEL_DATA_DIR", raising=False)
    for name, value in process_env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({}, data_dir=str(tmp_path), database_url=settings_url)
    chosen = embedded_database(settings, extra_env)
    if expected is None:
        assert chosen is None
    else:
        root = tmp_path if expected == "settings" else expected
        assert str(chosen.pgdata) == str(os.path.join(os.path.abspath(root), "postgres"))
