"""Compliance checks through the real tritonserver: a private cpu stack with the nsfw model (`--nsfw`) and a
compliance head trained here on a rendered concept (a red warning sticker, training.concepts) beside the committed
heads. A stickered product photo is rejected `non_compliant` naming the check, clean photos are selected, and every
image carries both scores."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from build_engines.artifacts import HEADS_DIR
from build_engines.triton_server import DEFAULT_DEST, server_binary
from tests.helpers import concept_photo, private_stack_client, select_verdicts
from training import compliance_head
from training.concepts import warning_sticker
from training.embeddings import analyse_encoded

PROJECT = Path(__file__).resolve().parents[2]
COLOURS = [(40, 90, 200), (30, 140, 60), (120, 120, 120), (230, 190, 40), (200, 40, 40)]


def photo(k: int, sticker: bool) -> bytes:
    return concept_photo(k, 640, COLOURS, warning_sticker if sticker else None)


def embeddings(files: list[bytes]) -> np.ndarray:
    return analyse_encoded(np.frombuffer(f, np.uint8) for f in files).embeddings


@pytest.fixture(scope="module")
def compliance_stack(tmp_path_factory):
    if not server_binary(DEFAULT_DEST).is_file():
        pytest.skip("tritonserver not fetched: run `make triton` (make test does)")
    from build_engines.repository import generate

    heads = tmp_path_factory.mktemp("heads")
    shutil.copytree(HEADS_DIR, heads, dirs_exist_ok=True)
    positives = embeddings([photo(k, True) for k in range(30)])
    negatives = embeddings([photo(100 + k, False) for k in range(30)])
    head = compliance_head.train(positives, negatives, "sticker")
    compliance_head.write(head, heads, np.concatenate([positives, negatives]))
    repository = tmp_path_factory.mktemp("compliance_repository")
    generate("cpu", repository, Path(sys.prefix), PROJECT, heads_dir=heads, nsfw=True)
    with private_stack_client(repository, "imgsel-compliance-") as client:
        yield client


def test_the_served_checks_score_every_image_and_reject_the_stickered_one(compliance_stack):
    heads = compliance_stack.get("/readyz").json()["heads"]
    assert {"COMPLIANCE_nsfw", "COMPLIANCE_sticker"} <= set(heads)
    images = [("stickered", photo(500, True)), ("clean-a", photo(600, False)), ("clean-b", photo(601, False))]
    verdicts = select_verdicts(compliance_stack, images)
    stickered = verdicts["stickered"]
    assert stickered["status"] == "rejected" and stickered["reasons"] == ["non_compliant"]
    assert [c["check"] for c in stickered["compliance"]] == ["sticker"]
    assert stickered["compliance"][0]["score"] >= 0.5
    for name in ("clean-a", "clean-b"):
        assert verdicts[name]["status"] in ("selected", "duplicate") and verdicts[name]["compliance"] == []
    for verdict in verdicts.values():
        assert 0.0 <= verdict["scores"]["nsfw"] < 0.5 and "sticker" in verdict["scores"]
