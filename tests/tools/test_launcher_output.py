"""The launcher keeps reading a child's output whatever bytes it prints (Triton's image decoders log raw file bytes)."""

from __future__ import annotations

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
