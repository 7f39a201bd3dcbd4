"""An image's type (front, back, ...) from its category's type head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.categories import Category
from gateway.decisions.analysis import UNKNOWN_TYPE


@dataclass(frozen=True)
class TypeCall:
    type: str
    confidence: float  # the head's probability of the winning output, rounded to 4 places


def type_from_head(probabilities: np.ndarray, category: Category) -> TypeCall:
    """The head's most probable output; an output index beyond the category's types (a head wider than the
    categories file) is `unknown`, still with that output's confidence."""
    best = int(np.argmax(probabilities))
    image_type = category.types[best] if best < len(category.types) else UNKNOWN_TYPE
    return TypeCall(image_type, round(float(probabilities[best]), 4))
