"""The text_overlay check through the real tritonserver: a private cpu stack generated with `text_overlay=True`
(text_detect, text_recognize and the scorer in the analyze ensemble, TEXT_IMAGE from the preprocess model). A product
photo with a rendered banner is rejected `text_overlay` naming the check and its score; clean photos are selected,
and every image carries the `text_overlay` score."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import pytest

from build_engines.triton_server import DEFAULT_DEST, server_binary
from tests.helpers import concept_photo, private_stack_client, select_verdicts
from training.concepts import text_overlay

PROJECT = Path(__file__).resolve().parents[2]
COLOURS = [(200, 40, 40), (40, 90, 200), (60, 160, 80), (230, 200, 60)]  # tests/build_engines/test_text_overlay.py's


@pytest.fixture(scope="module")
def text_stack(tmp_path_factory):
    if not server_binary(DEFAULT_DEST).is_file():
        pytest.skip("tritonserver not fetched: run `make triton` (make test does)")
    from build_engines.repository import generate

    repository = tmp_path_factory.mktemp("text_repository")
    generate("cpu", repository, Path(sys.prefix), PROJECT, nsfw=False, text_overlay=True)
    with private_stack_client(repository, "imgsel-text-") as client:
        yield client


def test_a_banner_is_rejected_as_text_overlay_and_clean_photos_are_selected(text_stack):
    assert "COMPLIANCE_text_overlay" in text_stack.get("/readyz").json()["heads"]
    images = [
        ("banner", concept_photo(1, 640, COLOURS, partial(text_overlay, kind="banner"))),
        ("clean-a", concept_photo(2, 640, COLOURS)),
        ("clean-b", concept_photo(3, 640, COLOURS)),
    ]
    verdicts = select_verdicts(text_stack, images)
    banner = verdicts["banner"]
    assert banner["status"] == "rejected" and banner["reasons"] == ["text_overlay"]
    assert [c["check"] for c in banner["compliance"]] == ["text_overlay"]
    assert banner["compliance"][0]["score"] == banner["scores"]["text_overlay"] >= 0.5
    for name in ("clean-a", "clean-b"):
        assert verdicts[name]["status"] in ("selected", "duplicate") and verdicts[name]["compliance"] == []
        assert 0.0 <= verdicts[name]["scores"]["text_overlay"] < 0.5
