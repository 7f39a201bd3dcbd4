"""Decoder fuzz in the suite: ~100 mutated JPEG/PNG/WebP/TIFF files (fixed seed) through /v1/select on the real
stack; every image gets a contract status, no request gets a 5xx, the decoding model (the cpu default's one `analyze`
model) is never restarted.
`make fuzz` runs 1,000 (python -m loadtest.decoder_fuzz)."""

from __future__ import annotations

import pytest

from loadtest.decoder_fuzz import run_fuzz
from loadtest.stack_processes import second_gateway

FILES = 100
SEED = 20251


@pytest.fixture(scope="module")
def fuzz_gateway(stack, tmp_path_factory):
    # Its own data directory: accepted mutants feed the category vote's exemplars, which other tests rely on.
    env = {"IMGSEL_FETCH_ALLOW_PRIVATE": "true"}
    with second_gateway(stack, tmp_path_factory.mktemp("fuzz-data"), env) as gateway:
        yield gateway


def test_mutated_files_get_contract_statuses_and_never_restart_the_decoder(stack, fuzz_gateway):
    report = run_fuzz(fuzz_gateway, stack, FILES, seed=SEED, batch_size=16)

    assert report.stubs_before, "no python-backend stub of the stack found in /proc"
    assert any(name.startswith("stub analyze") for name in report.stubs_before)
    assert report.preprocess_rss_mb[0] and report.preprocess_failures == 0
    assert report.server_errors == [], report.culprits
    assert report.violations == []
    assert sum(report.statuses.values()) == FILES
    assert report.restarted == [] and report.models_not_ready == []
    # The mutants cover both outcomes: files the decoder refuses and files that still decode to a verdict.
    assert report.reasons["undecodable"] > 0
    assert report.statuses["error"] < FILES
