"""gateway.decisions.category: the prediction over a product's images, the head-width check, and where the curated
category comes from (request, predicted, default)."""

import numpy as np
import pytest

from contract.categories import CategoryHead
from contract.categories_file import load_catalog
from gateway.decisions.category import (
    CategoryPrediction,
    choose_category,
    head_width_matches,
    predict_category,
)

CATALOG = load_catalog()
HEAD = CategoryHead(classes=("fruit", "gear"), routes={"fruit": "default", "gear": "apparel"}, min_confidence=0.6)


def prediction(category: str | None) -> CategoryPrediction:
    return CategoryPrediction("gear", 0.9, category is not None, category, {"gear": 0.9, "fruit": 0.1}, 2)


def never_called():
    raise AssertionError("a known requested category must not ask the head")


def test_a_known_requested_category_wins_without_asking_the_head():
    choice = choose_category(CATALOG, " Apparel ", never_called)
    assert (choice.category.name, choice.source, choice.prediction) == ("apparel", "request", None)


def test_a_trusted_prediction_routes_an_absent_or_unknown_category():
    for requested in (None, "toaster"):
        choice = choose_category(CATALOG, requested, lambda: prediction("apparel"))
        assert (choice.category.name, choice.source) == ("apparel", "predicted")
        assert choice.prediction == prediction("apparel")


def test_no_head_or_an_untrusted_prediction_falls_back_to_default():
    none = choose_category(CATALOG, None, lambda: None)
    assert (none.category.name, none.source, none.prediction) == ("default", "default", None)
    untrusted = choose_category(CATALOG, "toaster", lambda: prediction(None))
    assert (untrusted.category.name, untrusted.source) == ("default", "default")
    assert untrusted.prediction is not None and not untrusted.prediction.trusted  # reported all the same


def test_prediction_is_the_mean_over_the_images_routed_when_trusted():
    result = predict_category([np.array([0.2, 0.8]), np.array([0.6, 0.4])], HEAD)
    assert (result.top_class, result.trusted, result.category, result.images) == ("gear", True, "apparel", 2)
    assert result.confidence == pytest.approx(0.6)
    assert result.probabilities == pytest.approx({"fruit": 0.4, "gear": 0.6})
    unsure = predict_category([np.array([0.45, 0.55])], HEAD)
    assert (unsure.top_class, unsure.trusted, unsure.category) == ("gear", False, None)
    assert predict_category([], HEAD) is None
    with pytest.raises(ValueError, match="3 probabilities for 2 classes"):
        predict_category([np.array([0.2, 0.3, 0.5])], HEAD)


def test_head_width_must_match_the_classes():
    assert head_width_matches(np.array([0.5, 0.5]), HEAD)
    assert not head_width_matches(np.array([0.2, 0.3, 0.5]), HEAD)
