"""The review page in a real headless browser (Debian's chromium; skips when it is not installed: `apt-get install
chromium`): keys and buttons label the queue, and the labels.csv the page would download holds exactly those labels.
A script appended to the generated page presses the keys through the page's own handlers, then chromium's --dump-dom
shows the result."""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import encode, product_photo
from training import review

CHROMIUM = shutil.which("chromium")
DRIVER = """<script>
const press = key => document.dispatchEvent(new KeyboardEvent('keydown', {key}));
press('y'); press('n'); press('k'); press('u'); press('j');
document.querySelectorAll('.item')[2].querySelector('.yes').click();
document.body.dataset.result = labelsCsv();
document.body.dataset.done = document.getElementById('done').textContent;
</script></body>"""


def dump_dom(page: Path) -> str:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={page.parent / 'chromium-profile'}", "--virtual-time-budget=2000", "--dump-dom",
        page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_keys_and_buttons_label_the_queue_and_the_download_holds_the_labels(tmp_path):
    queue = []
    for k in range(3):
        path = tmp_path / f'photo "{k}".jpg'  # a quote in a name must survive the CSV
        path.write_bytes(encode(product_photo(300, seed=k)))
        queue.append(review.Scored(path, 0.5 + k / 10))
    page = tmp_path / "review.html"
    page.write_text(review.review_page("round-1", "sticker", queue).replace("</body>", DRIVER))
    dom = dump_dom(page)
    done = re.search(r'data-done="([^"]*)"', dom)
    result = re.search(r'data-result="([^"]*)"', dom)
    assert done and result, dom[-2000:]
    assert html.unescape(done.group(1)) == "2 / 3 labelled"
    rows = list(csv.DictReader(io.StringIO(html.unescape(result.group(1)))))
    assert [(row["path"], row["label"]) for row in rows] == [(str(queue[0].path), "1"), (str(queue[2].path), "1")]
