"""The colour vocabulary: a catalog's colour names read as basic colour terms."""

from __future__ import annotations

import pytest

from contract.colours import BASIC_COLOURS, COLOUR_WORDS, colour_terms


@pytest.mark.parametrize(
    ("name", "terms"),
    [
        ("Navy", {"blue"}),
        ("navy/white", {"blue", "white"}),
        ("Space Gray", {"gray"}),
        ("spacegrey", {"gray"}),
        ("off-white", {"white"}),
        ("Blue-Gray Classic Black", {"blue", "gray", "black"}),
        ("teal", {"green", "blue"}),
        ("GREY", {"gray"}),
    ],
)
def test_names_read_word_by_word(name, terms):
    assert colour_terms(name) == terms


@pytest.mark.parametrize("name", ["Midnight", "multi", "", "-", "42"])
def test_unknown_words_add_nothing(name):
    assert colour_terms(name) == frozenset()


def test_every_word_maps_to_basic_terms():
    assert all(terms and set(terms) <= set(BASIC_COLOURS) for terms in COLOUR_WORDS.values())
    assert all(word.isalpha() and word.islower() for word in COLOUR_WORDS)
