"""Search head: a retrieval embedding for visual search, trained on the cached backbone embeddings with a
metric-learning loss; when written (heads/search.onnx) it is spliced into the vision model (output SEARCH_EMBEDDING,
L2-normalised) and the search index stores it instead of EMBEDDING (the category head keeps routing the cascade).

    python -m training.search_head --data ../shared/data [--out build_engines/heads] [--write-anyway]

Pairs: a product's pictures are positives of each other, every other product in the batch is a negative.
- grocery (Grocery Store Dataset, MIT): train.txt phone photos <-> their product's iconic catalog image (and each
  other); an extra cross-domain term asks each phone photo to pick its own iconic image among the batch's iconic
  images and each iconic image its photos (the snap-and-search task itself). val.txt photos are never trained on:
  they are the evaluation's queries.
- catalog (Magento sample data, OSL-3.0/AFL-3.0): the views of one style and colour; the style's other colourways
  are drawn into the same batch as hard negatives.
- products/ (shop sample data): the shops whose licence allows shipping weights trained on them
  (TRAINABLE_LICENCES); colourways (keys sharing a prefix) are drawn together as hard negatives, never positives.
  GPL/AGPL shops are only evaluated (evaluation.search_recall --protocol iconic, its multi-view check).
Mirrored copies of every picture (the embedding cache's second half) are extra views of the same product.

The head: x + (x A) B with B starting at zero (the untrained head is EMBEDDING itself, the fallback an older model
repository serves), pulled back towards it (L2-SP) and L2-normalised. Same width as EMBEDDING: the search index's
column, the store's API and the fallback stay unchanged.

Hyper-parameters (a GRID config and the scale of its trained residual) are chosen on an inner split of the TRAINING
products (training.splits.cv_fold of the grocery product, catalog style, shop product family; the held-out grocery
products of training.splits.is_validation left out entirely), never on the grocery val photos, and measured on a
catalog of the inner split's products only (selection_score: what a shop's own catalog is to the head). The head is
written only when the chosen one beats EMBEDDING there (beats_identity); the card (search.json) is written either
way. evaluation.search_recall retrains it without the held-out grocery products to measure products the head never
saw.

One module past 400 lines: its sections (data, head and losses, batches, retrieval metrics, selection, export, the
command) all turn on RetrievalSet and HeadConfig and change together; the retrieval metrics are the first to move
out if another trainer needs them.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from build_engines.artifacts import HEADS_DIR
from contract.categories_file import load_catalog
from contract.tensors import EMBEDDING, EMBEDDING_DIM, SEARCH_EMBEDDING, SEARCH_HEAD_MODEL
from training.datasets import DEFAULT_DATA, GROCERY_ICONIC, development_data
from training.embedding_cache import DEFAULT_CACHE, cached_embeddings
from training.splits import cv_fold, is_validation

SEED = 0
# Licences of products/ rows whose pictures may train shipped weights (the manifest's licence column).
TRAINABLE_LICENCES = ("MIT", "BSD", "OSL", "AFL", "LGPL", "Unsplash License")
PRODUCTS_PER_BATCH = 128
VIEWS_PER_PRODUCT = 4


def trainable_licence(licence: str) -> bool:
    return any(name in licence for name in TRAINABLE_LICENCES) and "AGPL" not in licence.split("(")[0]


def licence_label(licence: str) -> str:
    """The manifest's licence without its notes, except the photo licence where it differs from the code's."""
    return "Unsplash License (photo)" if "Unsplash License" in licence else licence.split(" (")[0]


def product_family(product: str) -> str:
    """Colourways share the key up to its last `-` part (thelia_PROD005-owen-c1 / -c2, abante_102-gucci-guilty-r...)."""
    return product.rsplit("-", 1)[0]


@dataclass
class RetrievalSet:
    """Pictures labelled for retrieval. `embeddings` [2n, D]: rows n.. are the mirrored copies of rows ..n."""

    embeddings: np.ndarray
    products: list[str] = field(default_factory=list)  # positives share it
    families: list[str] = field(default_factory=list)  # products of one family: hard negatives of each other
    catalog: list[bool] = field(default_factory=list)  # a catalog picture (iconic image, studio shot), not a photo
    source: list[str] = field(default_factory=list)  # grocery, catalog, products
    evaluation_only: list[bool] = field(default_factory=list)  # grocery val photos, untrainable shops
    licence: list[str] = field(default_factory=list)
    partition: list[str] = field(default_factory=list)  # top-level category (the search index's partition)
    valid: list[bool] = field(default_factory=list)  # decoded (an undecodable picture has no embedding)
    paths: list[Path] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.products)


def grocery_and_catalog(data: Path, cache_dir: Path | None) -> RetrievalSet:
    """The development list the category head caches (training.datasets.development_data), labelled by product."""
    classes = load_catalog().category_head.classes
    dev = development_data(data / "grocery", data / "catalog" / "manifest.csv", classes)
    embeddings, valid = cached_embeddings(dev.paths, cache_dir)
    colours = [row["color"] for row in csv.DictReader((data / "catalog" / "manifest.csv").open())]
    out = RetrievalSet(embeddings)
    catalog_rows = iter(colours)
    iconic = str(data / GROCERY_ICONIC)
    for path, group, validation, source, ok, cls in zip(
        dev.paths, dev.groups, dev.validation, dev.sources, valid, dev.classes
    ):
        if source == "grocery":
            product, family, is_catalog = f"grocery:{group}", f"grocery:{group}", str(path).startswith(iconic)
            licence = "MIT"
        else:
            colour = next(catalog_rows)
            product, family, is_catalog = f"catalog:{group}-{colour}", f"catalog:{group}", True
            validation, licence = False, "OSL-3.0/AFL-3.0"
        out.products.append(product)
        out.families.append(family)
        out.catalog.append(is_catalog)
        out.source.append(source)
        out.evaluation_only.append(bool(validation) or not ok)
        out.licence.append(licence)
        out.partition.append(cls)
        out.valid.append(bool(ok))
        out.paths.append(path)
    return out


def shop_products(data: Path, cache_dir: Path | None) -> RetrievalSet:
    """products/manifest.csv: every picture (trainable or not, by licence)."""
    rows = list(csv.DictReader((data / "products" / "manifest.csv").open()))
    embeddings, valid = cached_embeddings([data / "products" / row["file"] for row in rows], cache_dir)
    out = RetrievalSet(embeddings)
    for row, ok in zip(rows, valid):
        out.products.append(f"products:{row['product']}")
        out.families.append(f"products:{product_family(row['product'])}")
        out.catalog.append(True)
        out.source.append("products")
        out.evaluation_only.append(not (ok and trainable_licence(row["licence"])))
        out.licence.append(licence_label(row["licence"]))
        out.partition.append(row["category"])
        out.valid.append(bool(ok))
        out.paths.append(data / "products" / row["file"])
    return out


def concatenate(parts: list[RetrievalSet]) -> RetrievalSet:
    """One set; the embeddings re-ordered so rows n.. stay the mirrored copies."""
    plain = np.concatenate([p.embeddings[: p.n] for p in parts])
    mirrored = np.concatenate([p.embeddings[p.n : 2 * p.n] for p in parts])
    out = RetrievalSet(np.concatenate([plain, mirrored]).astype(np.float32))
    for name in [f.name for f in fields(RetrievalSet) if f.name != "embeddings"]:
        setattr(out, name, [value for p in parts for value in getattr(p, name)])
    return out


def split_group(data: RetrievalSet, row: int) -> str:
    """The unit of every split here: the grocery product, the catalog style, the shop product's family."""
    return data.families[row]


# ----------------------------------------------------------------------------------------------------- model


class SearchHead(nn.Module):
    """EMBEDDING -> SEARCH_EMBEDDING: x + (x A) B, L2-normalised. B starts at zero, so the untrained head is
    EMBEDDING itself; the low-rank residual (rank `rank`) is cheap to train and keeps the map near the identity."""

    def __init__(self, dim: int = EMBEDDING_DIM, rank: int = 128):
        super().__init__()
        generator = torch.Generator().manual_seed(SEED)
        self.down = nn.Parameter(torch.randn(dim, rank, generator=generator) / dim**0.5)
        self.up = nn.Parameter(torch.zeros(rank, dim))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return functional.normalize(embedding + (embedding @ self.down) @ self.up, dim=-1)

    def drift(self) -> torch.Tensor:
        """Squared size of the residual's output map (the pull towards the identity)."""
        return self.up.pow(2).sum()


@dataclass(frozen=True)
class HeadConfig:
    steps: int = 400
    temperature: float = 0.05
    l2sp: float = 1e-3  # weight of the pull towards the identity
    cross_domain: float = 1.0  # weight of the phone photo <-> own catalog image terms
    rank: int = 128
    lr: float = 1e-3
    residual_scale: float = 1.0  # the trained residual (x A) B scaled by this after training: between EMBEDDING and it

    def describe(self) -> str:
        return (
            f"rank {self.rank}, {self.steps} steps, temperature {self.temperature}, L2-SP {self.l2sp}, "
            f"cross-domain {self.cross_domain}, residual x{self.residual_scale:g}"
        )


def supervised_contrastive(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-positive InfoNCE (SupCon): each row against every other row of the batch, its product's rows positive."""
    logits = z @ z.T / temperature
    eye = torch.eye(len(z), dtype=torch.bool)
    logits = logits.masked_fill(eye, -1e9)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    has = positive.any(dim=1)
    per_row = (log_prob * positive).sum(dim=1)[has] / positive.sum(dim=1)[has]
    return -per_row.mean()


def pick_positive(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """InfoNCE of each row's positives among its row of logits (rows without a positive left out)."""
    has = positive.any(dim=1)
    if not has.any():
        return logits.sum() * 0
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -((log_prob * positive).sum(dim=1)[has] / positive.sum(dim=1)[has]).mean()


def cross_domain_loss(z: torch.Tensor, labels: torch.Tensor, is_catalog: torch.Tensor, temperature: float):
    """Both directions of the snap-and-search task: each phone photo picks its product's catalog picture among the
    batch's catalog pictures, and each catalog picture its product's photos among the batch's photos (the second
    keeps a few catalog pictures from becoming every photo's nearest neighbour)."""
    photos, catalog = (~is_catalog).nonzero()[:, 0], is_catalog.nonzero()[:, 0]
    if not len(photos) or not len(catalog):
        return z.sum() * 0
    logits = z[photos] @ z[catalog].T / temperature
    positive = labels[photos][:, None] == labels[catalog][None, :]
    return (pick_positive(logits, positive) + pick_positive(logits.T, positive.T)) / 2


class BatchSampler:
    """Batches of PRODUCTS_PER_BATCH products (with their family's other products: hard negatives) and up to
    VIEWS_PER_PRODUCT of each product's rows (plain or mirrored); a grocery product always brings a catalog picture."""

    def __init__(self, data: RetrievalSet, rows: np.ndarray, seed: int = SEED):
        self.rng = np.random.default_rng(seed)
        self.by_product: dict[str, list[int]] = {}
        for row in rows:
            self.by_product.setdefault(data.products[row], []).append(int(row))
        self.family_of = {product: data.families[product_rows[0]] for product, product_rows in self.by_product.items()}
        self.by_family: dict[str, list[str]] = {}
        for product, family in self.family_of.items():
            self.by_family.setdefault(family, []).append(product)
        self.products = sorted(self.by_product)
        self.catalog, self.n = data.catalog, data.n

    def batch(self) -> np.ndarray:
        chosen: dict[str, None] = {}
        for index in self.rng.permutation(len(self.products)):
            product = self.products[index]
            for member in [product] + self.by_family[self.family_of[product]]:
                chosen.setdefault(member)
            if len(chosen) >= PRODUCTS_PER_BATCH:
                break
        picked = []
        for product in chosen:
            rows = self.by_product[product]
            catalog = [r for r in rows if self.catalog[r]]
            take = list(self.rng.choice(rows, size=min(len(rows), VIEWS_PER_PRODUCT), replace=False))
            if catalog and not any(self.catalog[r] for r in take):
                take[0] = int(self.rng.choice(catalog))
            # Plain or mirrored copy, at random (the mirror is another view of the same product).
            picked += [r + self.n * int(self.rng.integers(2)) for r in take]
        return np.array(picked)


def fit(data: RetrievalSet, rows: np.ndarray, config: HeadConfig) -> SearchHead:
    """Train a head on `rows` (and their mirrored copies)."""
    torch.manual_seed(SEED)
    head = SearchHead(data.embeddings.shape[1], config.rank)
    optimiser = torch.optim.Adam(head.parameters(), lr=config.lr)
    sampler = BatchSampler(data, rows)
    x_all = torch.from_numpy(data.embeddings)
    product_ids = {p: i for i, p in enumerate(sorted(set(data.products)))}
    labels_all = torch.tensor([product_ids[p] for p in data.products] * 2)
    catalog_all = torch.tensor(list(data.catalog) * 2)
    for _ in range(config.steps):
        batch = torch.from_numpy(sampler.batch())
        z = head(x_all[batch])
        labels = labels_all[batch]
        loss = supervised_contrastive(z, labels, config.temperature)
        loss = loss + config.cross_domain * cross_domain_loss(z, labels, catalog_all[batch], config.temperature)
        loss = loss + config.l2sp * head.drift()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return scaled(head.eval(), config.residual_scale)


def scaled(head: SearchHead, residual_scale: float) -> SearchHead:
    """A copy of `head` with its residual scaled (1: the head, 0: EMBEDDING)."""
    out = copy.deepcopy(head)
    with torch.no_grad():
        out.up.mul_(residual_scale)
    return out


def project(head: SearchHead | None, embeddings: np.ndarray) -> np.ndarray:
    """SEARCH_EMBEDDING of `embeddings` (None: EMBEDDING itself, normalised)."""
    if head is None:
        return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    with torch.no_grad():
        return head(torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))).numpy()


# ------------------------------------------------------------------------------------------------ evaluation


def recall_by_product(
    queries: np.ndarray,
    query_products: list[str],
    index: np.ndarray,
    index_products: list[str],
    ks: tuple[int, ...] = (1, 5),
    exclude_self: np.ndarray | None = None,
) -> dict[str, float]:
    """recall@k of exact cosine search: a query is a hit when its product is among the k best products (each
    product scored by its best picture, as the API's per_product search). `exclude_self`: per query, the index
    position of the query itself (left out), or -1."""
    names = sorted(set(index_products))
    column = {p: i for i, p in enumerate(names)}
    member = np.array([column[p] for p in index_products])
    similarity = queries @ index.T
    if exclude_self is not None:
        has = exclude_self >= 0
        similarity[np.flatnonzero(has), exclude_self[has]] = -np.inf
    best = np.full((len(queries), len(names)), -np.inf, dtype=np.float32)
    for j, p in enumerate(member):
        best[:, p] = np.maximum(best[:, p], similarity[:, j])
    truth = np.array([column.get(p, -1) for p in query_products])
    truth_score = best[np.arange(len(queries)), np.maximum(truth, 0)]
    rank = (best > truth_score[:, None]).sum(axis=1)
    found = truth >= 0
    return {f"recall_at_{k}": round(float(np.mean((rank < k) & found)), 4) for k in ks} | {"queries": len(queries)}


def multiview(data: RetrievalSet, z: np.ndarray, query_rows: np.ndarray, index_rows: np.ndarray) -> dict[str, float]:
    """Each query picture (of a product with another picture among `index_rows`) against `index_rows`, itself left
    out: is another view of its product found first?"""
    index_products = [data.products[i] for i in index_rows]
    counts: dict[str, int] = {}
    for p in index_products:
        counts[p] = counts.get(p, 0) + 1
    position = {int(r): k for k, r in enumerate(index_rows)}
    queries = np.array([r for r in query_rows if counts.get(data.products[r], 0) - (int(r) in position) >= 1])
    if not len(queries):
        return {"queries": 0}
    exclude = np.array([position.get(int(r), -1) for r in queries])
    return recall_by_product(
        z[queries], [data.products[i] for i in queries], z[index_rows], index_products, exclude_self=exclude
    )


# ------------------------------------------------------------------------------------------------ selection

GRID = (
    HeadConfig(steps=300, temperature=0.05),
    HeadConfig(steps=300, temperature=0.1),
    HeadConfig(steps=600, temperature=0.1, cross_domain=2.0),
)
RESIDUAL_SCALES = (0.25, 0.5, 0.75, 1.0)  # each GRID head is measured at these (one training each)
# A head may lose this much recall on any one inner-validation figure (about one query of the grocery set) and
# still count as losing nothing, provided its mean recall is higher.
SELECTION_TOLERANCE = 0.01


@dataclass
class Splits:
    trainable: np.ndarray  # rows that may train shipped weights
    unseen: np.ndarray  # rows of the held-out grocery products (is_validation): never in hyper-parameter training
    inner_validation: np.ndarray  # trainable rows of the inner split's held-out groups


def splits(data: RetrievalSet) -> Splits:
    trainable = np.array([not e for e in data.evaluation_only])
    unseen = np.array(
        [s == "grocery" and is_validation(data.families[i].split(":", 1)[1]) for i, s in enumerate(data.source)]
    )
    inner = np.array([cv_fold(split_group(data, i)) == 0 for i in range(data.n)])
    return Splits(trainable, unseen, trainable & ~unseen & inner)


def selection_score(data: RetrievalSet, z: np.ndarray, rows: np.ndarray) -> dict:
    """Inner-validation metrics on a catalog of products the head never saw: the grocery photos of the held-out
    products (`rows`) against those products' iconic images only, and each multi-view picture among `rows` against
    the other pictures of `rows`; `score` is the mean of the four recalls (@1 and @5 of both).

    The index holds held-out products only, as a shop's own catalog would: with the training products' catalog
    pictures in the same index, the pictures the head was trained to pull photos towards become every new photo's
    nearest neighbours (hubs), which measures the evaluation's mix, not a new catalog (MODELS.md "search")."""
    valid = np.array(data.valid)
    held = np.zeros(data.n, bool)
    held[rows] = True
    grocery = held & valid & np.array([s == "grocery" for s in data.source])
    photos, iconic = np.flatnonzero(grocery & ~np.array(data.catalog)), np.flatnonzero(grocery & np.array(data.catalog))
    to_iconic = recall_by_product(
        z[photos], [data.products[i] for i in photos], z[iconic], [data.products[i] for i in iconic]
    )
    views = np.flatnonzero(held & valid & np.array([s != "grocery" for s in data.source]))
    metrics = {"grocery_photo_to_iconic": to_iconic, "multiview": multiview(data, z, views, views)}
    return metrics | {"score": round(float(np.mean(selection_recalls(metrics))), 4)}


def selection_recalls(metrics: dict) -> list[float]:
    grocery, views = metrics["grocery_photo_to_iconic"], metrics["multiview"]
    return [
        grocery["recall_at_1"],
        grocery["recall_at_5"],
        views.get("recall_at_1", 0.0),
        views.get("recall_at_5", 0.0),
    ]


def beats_identity(metrics: dict, identity: dict) -> bool:
    """A head is served only if its mean inner-validation recall is higher than EMBEDDING's and it loses nothing
    (beyond SELECTION_TOLERANCE) on any one of the four recalls."""
    return metrics["score"] > identity["score"] and all(
        mine >= theirs - SELECTION_TOLERANCE
        for mine, theirs in zip(selection_recalls(metrics), selection_recalls(identity))
    )


def choose(data: RetrievalSet, parts: Splits) -> tuple[HeadConfig, bool, list[dict]]:
    """The GRID config and RESIDUAL_SCALES value with the best inner-validation score among those that beat_identity
    (else the best of all, unqualified), whether it qualified, and the table (the identity head is its first row)."""
    rows = np.flatnonzero(parts.trainable & ~parts.unseen & ~parts.inner_validation)
    held = np.flatnonzero(parts.inner_validation)
    identity = selection_score(data, project(None, data.embeddings[: data.n]), held)
    table = [{"config": "identity (EMBEDDING)", **identity}]
    candidates = []
    for base in GRID:
        started = time.process_time()
        head = fit(data, rows, base)
        cpu_s = round(time.process_time() - started, 1)
        for residual_scale in RESIDUAL_SCALES:
            config = replace(base, residual_scale=residual_scale)
            metrics = selection_score(data, project(scaled(head, residual_scale), data.embeddings[: data.n]), held)
            table.append({"config": config.describe(), **metrics, "cpu_s": cpu_s})
            print(json.dumps(table[-1]), file=sys.stderr)
            candidates.append((beats_identity(metrics, identity), metrics["score"], config))
    qualified, _, best = max(candidates, key=lambda c: (c[0], c[1]))
    return best, qualified, table


def export(head: SearchHead, path: Path, dim: int = EMBEDDING_DIM) -> Path:
    """heads/search.onnx: EMBEDDING -> SEARCH_EMBEDDING, dynamic batch, checked against torch."""
    from build_engines.export import export_onnx, max_parity_error

    export_onnx(head, torch.zeros(2, dim), path, EMBEDDING.name, SEARCH_EMBEDDING.name)
    pin_output_width(path, dim)
    error = max_parity_error(head, path, torch.randn(4, dim, generator=torch.Generator().manual_seed(0)))
    if error > 1e-4:
        raise RuntimeError(f"search head ONNX parity error {error:.2e} > 1e-4")
    return path


def pin_output_width(path: Path, dim: int) -> None:
    """The exporter leaves the normalised output's width symbolic; the vision model's config needs it fixed."""
    import onnx

    model = onnx.load(str(path))
    width = model.graph.output[0].type.tensor_type.shape.dim[-1]
    width.ClearField("dim_param")
    width.dim_value = dim
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def load_config(card: Path) -> HeadConfig:
    return HeadConfig(**json.loads(card.read_text())["config"])


def retrieval_data(data: Path, cache_dir: Path | None) -> RetrievalSet:
    return concatenate([grocery_and_catalog(data, cache_dir), shop_products(data, cache_dir)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument(
        "--write-anyway",
        action="store_true",
        help="write the best head even when it does not beat EMBEDDING on the inner validation (experiments: give "
        "--out another folder, then evaluation.search_recall --search-head)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "grocery" / "classes.csv").is_file():
        print(f"{args.data}: no grocery data (../shared/data)", file=sys.stderr)
        return 2
    data = retrieval_data(args.data, args.cache_dir)
    parts = splits(data)
    config, qualified, table = choose(data, parts)
    trainable = np.flatnonzero(parts.trainable)
    head_file = args.out / f"{SEARCH_HEAD_MODEL}.onnx"
    fit_cpu_s = None
    if qualified or args.write_anyway:
        started = time.process_time()
        export(fit(data, trainable, config), head_file)
        fit_cpu_s = round(time.process_time() - started, 1)
    else:
        head_file.unlink(missing_ok=True)  # a stale head must not be served
        print(
            f"search: no head beats {EMBEDDING.name} on the inner validation (recall@1 and @5, multi-view @1); "
            f"none written, the search index keeps {EMBEDDING.name} (--write-anyway to write the best one)",
            file=sys.stderr,
        )
    used = sorted({(data.source[i], data.licence[i]) for i in trainable})
    card = {
        "model": SEARCH_HEAD_MODEL,
        "head_written": head_file.is_file(),
        "beats_identity_on_inner_validation": qualified,
        "input": EMBEDDING.name,
        "output": SEARCH_EMBEDDING.name,
        "architecture": f"x + (x A) B, A 1280x{config.rank}, B {config.rank}x1280 starting at zero (the identity), "
        f"B scaled by {config.residual_scale:g} after training, L2-normalised",
        "loss": "supervised contrastive (products' pictures and mirrored copies positive) + phone photo -> own "
        "catalog picture InfoNCE + L2-SP towards the identity",
        "config": config.__dict__,
        "training_sources": [f"{source}: {licence}" for source, licence in used],
        "training_pictures": int(len(trainable)),
        "training_products": len({data.products[i] for i in trainable}),
        "not_trained_on": "grocery val.txt photos (the evaluation's queries); products/ of GPL/AGPL shops "
        "(evaluation only); undecodable pictures",
        "selection": {
            "split": "inner split of the training products (training.splits.cv_fold == 0 of the grocery product / "
            "catalog style / shop product family), the held-out grocery products (is_validation) left out entirely; "
            "measured on a catalog of the inner split's products only (selection_score)",
            "grid": table,
        },
        "unseen_grocery_products": sorted({data.products[i] for i in np.flatnonzero(parts.unseen)}),
        "fit_cpu_s": fit_cpu_s,
        "command": "python -m training.search_head --data ../shared/data",
        "evaluation": "python -m evaluation.search_recall --protocol iconic (MODELS.md search head, BENCHMARKS.md)",
    }
    (args.out / f"{SEARCH_HEAD_MODEL}.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({k: card[k] for k in ("config", "training_pictures", "training_products")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
