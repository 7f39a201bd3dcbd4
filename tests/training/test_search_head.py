"""The search head learns the snap-and-search pairs: on synthetic embeddings where a phone photo is its product's
catalog picture distorted by one shared 'in-store' map plus noise, the head trained on some products finds the
catalog picture of NEW products far more often than the raw embedding does; untrained it is the identity, and its
ONNX export gives what torch gives, unit-norm."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from contract.tensors import EMBEDDING, SEARCH_EMBEDDING
from training import search_head

DIM = 64


def synthetic(products: int, photos: int, distortion: np.ndarray, seed: int) -> search_head.RetrievalSet:
    """Per product one catalog picture (a random centre) and `photos` phone photos: the centre moved by `distortion`
    (shared by every product) plus noise; the mirrored copies are slightly noisier duplicates."""
    rng = np.random.default_rng(seed)
    rows, names, catalog = [], [], []
    for p in range(products):
        centre = rng.normal(size=DIM)
        rows.append(centre)
        names.append(f"p{seed}-{p}")
        catalog.append(True)
        for _ in range(photos):
            rows.append(centre + centre @ distortion + rng.normal(size=DIM) * 0.7)
            names.append(f"p{seed}-{p}")
            catalog.append(False)
    plain = np.array(rows, np.float32)
    mirrored = plain + rng.normal(size=plain.shape).astype(np.float32) * 0.1
    data = search_head.RetrievalSet(np.concatenate([plain, mirrored]))
    data.products, data.families, data.catalog = names, list(names), catalog
    data.source, data.licence = ["grocery"] * len(names), ["MIT"] * len(names)
    data.evaluation_only, data.valid = [False] * len(names), [True] * len(names)
    return data


def photo_to_catalog_recall(data: search_head.RetrievalSet, head) -> float:
    z = search_head.project(head, data.embeddings[: data.n])
    photos = np.array([i for i in range(data.n) if not data.catalog[i]])
    catalog = np.array([i for i in range(data.n) if data.catalog[i]])
    names = data.products
    return search_head.recall_by_product(
        z[photos], [names[i] for i in photos], z[catalog], [names[i] for i in catalog]
    )["recall_at_1"]


def test_the_trained_head_finds_the_catalog_picture_of_new_products():
    distortion = np.random.default_rng(7).normal(size=(DIM, DIM)) * 0.5
    train, new = synthetic(48, 3, distortion, seed=0), synthetic(40, 3, distortion, seed=1)
    config = search_head.HeadConfig(steps=80, temperature=0.1, l2sp=1e-4, rank=32, lr=1e-2)
    head = search_head.fit(train, np.arange(train.n), config)
    before, after = photo_to_catalog_recall(new, None), photo_to_catalog_recall(new, head)
    assert after > before + 0.15, (before, after)


def test_untrained_it_is_the_identity_and_the_export_matches(tmp_path):
    head = search_head.SearchHead(DIM, rank=8)
    x = torch.randn(5, DIM, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(head(x), torch.nn.functional.normalize(x, dim=-1))
    with torch.no_grad():
        head.up.normal_()
    path = search_head.export(head, tmp_path / "search.onnx", DIM)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [EMBEDDING.name]
    assert [o.name for o in session.get_outputs()] == [SEARCH_EMBEDDING.name]
    (got,) = session.run(None, {EMBEDDING.name: x.numpy()})
    np.testing.assert_allclose(got, head(x).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_multiview_leaves_the_query_out_and_needs_another_view():
    """Two views of product a, one of b: a's views find each other (the query itself is not its own hit); b has no
    other view and is no query."""
    z = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], np.float32)
    data = search_head.RetrievalSet(np.concatenate([z, z]))
    data.products = ["a", "a", "b"]
    got = search_head.multiview(data, z, np.arange(3), np.arange(3))
    assert got == {"recall_at_1": 1.0, "recall_at_5": 1.0, "queries": 2}
    shuffled = search_head.multiview(data, z[[0, 2, 1]], np.arange(3), np.arange(3))  # a's second view looks like b
    assert shuffled["recall_at_1"] == 0.0 and shuffled["recall_at_5"] == 1.0
