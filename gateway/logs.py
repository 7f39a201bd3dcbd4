"""Log lines of the gateway: one JSON object per line when IMGSEL_LOG_JSON is true (time, level, logger, message,
the request id of the request being served, and any `extra=` fields), plain text otherwise. Applied to the `imgsel`
loggers and to uvicorn's own handlers, so a log collector reads one format."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

# Set by gateway.api.request_context for the duration of one request (asyncio.to_thread copies it too).
request_id_var: ContextVar[str | None] = ContextVar("imgsel_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is written as a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message", "taskName"}
_HANDLER_FLAG = "_imgsel_handler"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        line |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in line}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = getattr(record, "request_id", None) or request_id_var.get() or "-"
        return super().format(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (as logging.lastResort does), not the one seen at setup."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def formatter(json_lines: bool) -> logging.Formatter:
    return JsonFormatter() if json_lines else TextFormatter()


def configure_logging(json_lines: bool, stream=None) -> logging.Handler:
    """Idempotent: one handler of ours on the `imgsel` logger (INFO), and our formatter on uvicorn's handlers when
    uvicorn has configured any (it does before it imports the app)."""
    chosen = formatter(json_lines)
    logger = logging.getLogger("imgsel")
    logger.setLevel(logging.INFO)
    handler = next((h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
        setattr(handler, _HANDLER_FLAG, True)
        logger.addHandler(handler)
    handler.setFormatter(chosen)
    for name in UVICORN_LOGGERS:
        for uvicorn_handler in logging.getLogger(name).handlers:
            uvicorn_handler.setFormatter(chosen)
    return handler
