"""JSON log lines (gateway.logs): the fields, the request id from the context, extras, exceptions, one line per
record; configure_logging is idempotent and also formats uvicorn's handlers."""

from __future__ import annotations

import io
import json
import logging
import pathlib
import sys

import pytest

from gateway.logs import JsonFormatter, TextFormatter, configure_logging, request_id_var


def record(message: str = "hello %s", args=("world",), **extra) -> logging.LogRecord:
    rec = logging.LogRecord("imgsel.test", logging.WARNING, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def test_fields():
    line = json.loads(JsonFormatter().format(record(route="/v1/select", status=200)))
    assert line["level"] == "WARNING" and line["logger"] == "imgsel.test" and line["message"] == "hello world"
    assert line["route"] == "/v1/select" and line["status"] == 200
    assert line["time"].endswith("+00:00") and "T" in line["time"]
    assert line["request_id"] is None


def test_request_id_from_the_context():
    token = request_id_var.set("rid-1")
    try:
        assert json.loads(JsonFormatter().format(record()))["request_id"] == "rid-1"
        assert "[rid-1]" in TextFormatter().format(record())
    finally:
        request_id_var.reset(token)


def test_one_line_even_for_multi_line_messages_and_tracebacks():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        rec = record("first\nsecond", ())
        rec.exc_info = sys.exc_info()
    text = JsonFormatter().format(rec)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "first\nsecond" and "ValueError: bad" in line["exception"]


def test_values_json_cannot_encode_are_written_as_text():
    line = json.loads(JsonFormatter().format(record(path=pathlib.Path("/tmp/x"))))
    assert line["path"] == "/tmp/x"


@pytest.fixture
def clean_loggers():
    imgsel, uvicorn_error = logging.getLogger("imgsel"), logging.getLogger("uvicorn.error")
    before = (list(imgsel.handlers), list(uvicorn_error.handlers))
    imgsel.handlers[:] = [h for h in imgsel.handlers if not getattr(h, "_imgsel_handler", False)]
    yield imgsel, uvicorn_error
    imgsel.handlers[:], uvicorn_error.handlers[:] = before


def test_configure_is_idempotent_and_formats_uvicorn(clean_loggers):
    imgsel, uvicorn_error = clean_loggers
    uvicorn_handler = logging.StreamHandler(io.StringIO())
    uvicorn_error.addHandler(uvicorn_handler)
    stream = io.StringIO()
    first = configure_logging(True, stream)
    assert configure_logging(True, stream) is first
    assert sum(getattr(h, "_imgsel_handler", False) for h in imgsel.handlers) == 1
    assert isinstance(uvicorn_handler.formatter, JsonFormatter)
    logging.getLogger("imgsel.gateway").info("ready", extra={"port": 8080})
    assert json.loads(stream.getvalue().splitlines()[-1])["port"] == 8080
    configure_logging(False, stream)
    assert isinstance(first.formatter, TextFormatter) and isinstance(uvicorn_handler.formatter, TextFormatter)
