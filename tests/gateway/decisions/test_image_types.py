"""gateway.decisions.image_types: the type head's most probable output, `unknown` past the category's types."""

import numpy as np

from contract.categories_file import load_catalog
from gateway.decisions.analysis import UNKNOWN_TYPE
from gateway.decisions.image_types import TypeCall, type_from_head

APPAREL = load_catalog().get("apparel")


def test_the_most_probable_type_with_its_rounded_confidence():
    probs = np.zeros(len(APPAREL.types), np.float32)
    probs[1], probs[0] = 0.712345, 0.287655
    assert type_from_head(probs, APPAREL) == TypeCall(APPAREL.types[1], 0.7123)


def test_an_output_beyond_the_categorys_types_is_unknown():
    probs = np.full(len(APPAREL.types) + 1, 0.01, np.float32)
    probs[-1] = 0.9  # a head wider than the categories file
    call = type_from_head(probs, APPAREL)
    assert (call.type, call.confidence) == (UNKNOWN_TYPE, 0.9)


def test_ties_go_to_the_first_type():
    probs = np.full(len(APPAREL.types), 1.0 / len(APPAREL.types), np.float32)
    assert type_from_head(probs, APPAREL).type == APPAREL.types[0]
