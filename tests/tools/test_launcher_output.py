"""The launcher's output: the gateway's JSON log lines pass through unprefixed (one JSON object per line), plain
text from a child is prefixed with its name."""

from __future__ import annotations

import json
import sys

from tools.launcher import Child


def test_json_lines_pass_through_and_plain_text_is_prefixed(capsys):
    script = "print('{\"level\": \"info\", \"message\": \"hi\"}'); print('I1203 plain triton line')"
    child = Child("gateway", [sys.executable, "-c", script], env={})
    child.process.wait(10)
    child.pump_done.wait(10)
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[0]) == {"level": "info", "message": "hi"}
    assert lines[1] == "[gateway] I1203 plain triton line"
