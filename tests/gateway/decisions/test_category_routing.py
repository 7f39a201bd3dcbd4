"""The Curator's category resolution: request category, predicted by the head (mean over the product's images,
placeholders left out), or `default`; with fakes for the fetcher and Triton, the real library and decisions."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from contract.categories_file import load_catalog
from contract.tensors import EMBEDDING_DIM
from gateway.clients.fetch import Fetched
from gateway.clients.triton import RawAnalysis
from gateway.schemas import SelectRequest
from gateway.service import Curator
from gateway.stores.placeholders import PlaceholderLibrary
from tests.helpers import encode, product_photo

HEAD = load_catalog().category_head
CLASSES = HEAD.classes if HEAD else ()


def one_hot(cls: str, confidence: float) -> np.ndarray:
    probs = np.full(len(CLASSES), (1.0 - confidence) / (len(CLASSES) - 1), np.float32)
    probs[CLASSES.index(cls)] = confidence
    return probs


class FakeFetcher:
    async def fetch_all(self, images):
        return [Fetched(base64.b64decode(image.data)) for image in images]


class FakeAnalyzer:
    """Returns one prepared RawAnalysis per file (in order); `served` models as ready."""

    def __init__(self, raws, served):
        self.raws, self.served = raws, served

    async def analyze(self, files):
        return self.raws[: len(files)]

    async def ready_models(self):
        return self.served

    async def classify(self, head, embeddings):
        raise AssertionError("no type head is served in these tests")


def raw(seed: int, probs: np.ndarray | None, placeholder: float = 0.0) -> RawAnalysis:
    thumb = np.asarray(product_photo(128, (20 * seed % 255, 90, 200), seed=seed))
    embedding = np.random.default_rng(seed).normal(size=EMBEDDING_DIM).astype(np.float32)
    quality = {"blur": 0.1, "small_object": 0.1, "placeholder": placeholder}
    return RawAnalysis(True, 1000, 1000, thumb, embedding / np.linalg.norm(embedding), quality, probs)


def curate(tmp_path, raws, category=None, served=frozenset({"category"})):
    curator = Curator(
        load_catalog(), FakeFetcher(), FakeAnalyzer(raws, served), PlaceholderLibrary(tmp_path / "p.sqlite"), 16
    )
    images = [
        {"id": f"i{k}", "data": base64.b64encode(encode(product_photo(64, seed=k))).decode()} for k in range(len(raws))
    ]
    request = SelectRequest(product_id="p", category=category, images=images)
    return asyncio.run(curator.select(request))


pytestmark = pytest.mark.skipif(HEAD is None, reason="categories.toml has no [category_head]")


def test_absent_category_is_predicted_from_the_images_and_routed(tmp_path):
    response = curate(
        tmp_path, [raw(1, one_hot("fruit", 0.9)), raw(2, one_hot("vegetables", 0.5)), raw(3, one_hot("fruit", 0.8))]
    )
    assert response.category_source == "predicted" and response.category == HEAD.routes["fruit"]
    prediction = response.category_prediction
    assert prediction.top_class == "fruit" and prediction.trusted and prediction.images == 3
    assert prediction.confidence == pytest.approx((0.9 + 0.125 + 0.8) / 3, abs=1e-4)


def test_unconfident_prediction_falls_back_to_default_and_says_so(tmp_path):
    response = curate(tmp_path, [raw(1, one_hot("fruit", 0.4)), raw(2, one_hot("apparel", 0.4))], category="toaster")
    assert response.category_source == "default" and response.category == "default"
    assert response.category_prediction is not None and not response.category_prediction.trusted
    assert response.category_prediction.category is None


def test_placeholder_images_do_not_vote_on_the_category(tmp_path):
    raws = [raw(1, one_hot("apparel", 0.9)), raw(2, one_hot("gear", 1.0), placeholder=0.97)]
    response = curate(tmp_path, raws)
    assert response.category_prediction.images == 1
    assert response.category_prediction.top_class == "apparel" and response.category == HEAD.routes["apparel"]


def test_request_category_wins_and_no_served_head_means_default(tmp_path):
    raws = [raw(1, one_hot("fruit", 0.95))]
    given = curate(tmp_path, raws, category="Apparel")
    assert (given.category, given.category_source, given.category_prediction) == ("apparel", "request", None)
    unserved = curate(tmp_path, [raw(1, None)], served=frozenset())
    assert (unserved.category, unserved.category_source, unserved.category_prediction) == ("default", "default", None)


def test_a_head_of_another_width_is_ignored_not_misread(tmp_path):
    wrong = np.full(len(CLASSES) + 1, 1.0 / (len(CLASSES) + 1), np.float32)  # classes edited, head not retrained
    response = curate(tmp_path, [raw(1, wrong)])
    assert (response.category, response.category_source) == ("default", "default")
    assert response.category_prediction is None
