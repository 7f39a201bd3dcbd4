"""The launcher keeps reading a child's output whatever bytes it prints (Triton's image decoders log raw file bytes)."""

from __future__ import annotations

import json
import os
import sys
import time

from tools.launcher import Child


def test_child_output_with_invalid_utf8_is_kept_and_drained():
    # More than a pipe buffer after the bad bytes: if the reader died, the child would block on write and never exit.
    script = (
        "import sys; sys.stdout.buffer.write(b'[png_parser] bad \\xff\\xd8 stream\\n'); sys.stdout.flush(); "
        "[print('x' * 100) for _ in range(2000)]; print('last line')"
    )
    child = Child("fake", [sys.executable, "-c", script], dict(os.environ))
    assert child.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while (not child.tail or child.tail[-1] != "last line") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.tail[-1] == "last line"


def test_json_lines_pass_through_and_plain_text_is_prefixed(capsys):
    # The gateway's JSON log lines stay one JSON object per line; Triton's plain text carries the child's name.
    script = 'print(\'{"level": "info", "message": "hi"}\'); print(\'I1203 plain triton line\')'
    child = Child("gateway", [sys.executable, "-c", script], dict(os.environ))
    assert child.process.wait(timeout=30) == 0
    assert child.pump_done.wait(30)
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[0]) == {"level": "info", "message": "hi"}
    assert lines[1] == "[gateway] I1203 plain triton line"
