"""training.concepts: every renderer draws something visible for every kind, deterministically from its rng, and
leaves the input untouched."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import product_photo
from training.concepts import CONCEPTS

CASES = [(name, kind) for name, (_render, kinds) in CONCEPTS.items() for kind in kinds]


@pytest.mark.parametrize(("concept", "kind"), CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_each_kind_draws_visibly_and_deterministically(concept, kind):
    render, _kinds = CONCEPTS[concept]
    photo = product_photo(400, (40, 90, 200), seed=3)
    before = np.asarray(photo).copy()
    first = np.asarray(render(photo, np.random.default_rng(7), kind=kind))
    again = np.asarray(render(photo, np.random.default_rng(7), kind=kind))
    np.testing.assert_array_equal(np.asarray(photo), before)
    np.testing.assert_array_equal(first, again)
    changed = np.abs(first.astype(int) - before.astype(int)).max(axis=2) > 30
    assert first.shape == before.shape and 0.002 < changed.mean() < 0.6, changed.mean()
