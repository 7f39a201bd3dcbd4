"""Which category a product is curated as: the request's, the top-level category head's prediction, or the
default; and when the head's output can be read at all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contract.categories import Catalog, Category, CategoryHead


@dataclass(frozen=True)
class CategoryPrediction:
    """The top-level category head's verdict on one request: `top_class` wins the mean of the images'
    probabilities; `category` is its route when `confidence` reaches the head's floor (`trusted`), else None."""

    top_class: str
    confidence: float
    trusted: bool
    category: str | None
    probabilities: dict[str, float]
    images: int  # images the mean was taken over


def head_width_matches(probabilities: np.ndarray, head: CategoryHead) -> bool:
    """A served head of another width (classes edited, head not retrained) is treated as not served rather than
    mislabelling its outputs."""
    return len(probabilities) == len(head.classes)


def predict_category(probabilities: Sequence[np.ndarray], head: CategoryHead) -> CategoryPrediction | None:
    """Mean of the per-image class probabilities (one product: its images vote together, so one odd close-up does
    not decide), routed through `head.routes`; None when there is no image to predict from."""
    if not len(probabilities):
        return None
    mean = np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in probabilities]), axis=0)
    if mean.shape != (len(head.classes),):
        raise ValueError(f"category head gave {mean.shape[-1]} probabilities for {len(head.classes)} classes")
    best = int(np.argmax(mean))
    top_class, confidence = head.classes[best], float(mean[best])
    trusted = confidence >= head.min_confidence
    return CategoryPrediction(
        top_class=top_class,
        confidence=confidence,
        trusted=trusted,
        category=head.routes[top_class] if trusted else None,
        probabilities={cls: float(p) for cls, p in zip(head.classes, mean)},
        images=len(probabilities),
    )


CategorySource = Literal["request", "predicted", "default"]


@dataclass(frozen=True)
class CategoryChoice:
    """The category a product is curated as, where it came from, and the head's prediction when one was made."""

    category: Category
    source: CategorySource
    prediction: CategoryPrediction | None


def choose_category(
    catalog: Catalog, requested: str | None, predict: Callable[[], CategoryPrediction | None]
) -> CategoryChoice:
    """A known requested category wins (the head is not asked); else the head's trusted prediction; else the default
    category (no head served, nothing decodable, or the head not confident enough). `predict` is called only when
    the request names no known category."""
    category, known = catalog.resolve(requested)
    if known:
        return CategoryChoice(category, "request", None)
    prediction = predict()
    if prediction is not None and prediction.category is not None:
        return CategoryChoice(catalog.resolve(prediction.category)[0], "predicted", prediction)
    return CategoryChoice(category, "default", prediction)
