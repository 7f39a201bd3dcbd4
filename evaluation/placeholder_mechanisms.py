"""The three placeholder mechanisms measured on the evaluation items, and the choice of their combined rule:

- library match: pHash distance to the nearest library placeholder (the gateway's placeholder store rule);
- the category vote: each query's cosine similarity to K exemplars, real photos of its category from other groups
  (as the gateway's store of recently accepted images would give them); it fires when at least `min_votes` of them
  are 'unlike' (similarity < s), i.e. when the min_votes-th lowest similarity is below s;
- the learned head: the served placeholder score of heads/quality.onnx.

Every image goes through the production path (DALI preprocessing -> thumbnail, quality features; EfficientNet-Lite0 ->
embedding), cached by content (training.embedding_cache.AnalysisStore); or, given a `vision` model file, through that
model (evaluation.vision_runtime: embedding and the served placeholder score of the same file), uncached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.tensors import EMBEDDING, QUALITY_FEATURES, QUALITY_OUTPUTS, QUALITY_SCORES
from evaluation.placeholder_data import CATEGORIES, Item, load, split_of
from gateway.decisions.placeholders import LibraryRule
from training.embedding_cache import AnalysisStore, content_digest

ANALYSED = ("embeddings", "features", "thumbs", "valid")
BATCH = 32
HEAD_ALONE = 0.5  # the served threshold (categories.toml placeholder_max)
VOTE_SIMILARITIES = np.round(np.arange(0.10, 0.70, 0.01), 2)
# Calibration photos a category needs before its vote similarity is chosen on them alone (similarity_per_category).
MIN_CATEGORY_PHOTOS = 100
HEAD_WITH_VOTE = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def analyse(items: list[Item], cache: Path, vision: Path | None = None) -> dict[str, np.ndarray]:
    """Embedding, raw quality features, thumbnail and validity of every item, cached by content sha256 (with
    `vision`: from that model file, uncached, plus its placeholder score under "head")."""
    files = [load(item) for item in items]
    if vision is not None:
        return analyse_with_model(files, vision)
    cache.mkdir(parents=True, exist_ok=True)
    store = AnalysisStore(cache, "analysed", ANALYSED, batch_size=BATCH, threads=1)
    digests = [content_digest(f) for f in files]
    # New contents in order (the last of equal files stands for them all: same bytes).
    todo = sorted({d: i for i, d in enumerate(digests) if d not in store}.items(), key=lambda kv: kv[1])
    if todo:
        started = time.monotonic()
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            store.add([digest for digest, _ in chunk], [files[i] for _, i in chunk])
            print(f"  embedded {start + len(chunk)}/{len(todo)} ({time.monotonic() - started:.0f} s)", flush=True)
        store.save()
    return {
        "embeddings": store.column("embeddings", digests).astype(np.float32),
        "features": store.column("features", digests).astype(np.float32),
        "thumbs": store.column("thumbs", digests),
        "valid": np.array([bool(v) for v in store.column("valid", digests)]),
    }


def analyse_with_model(files: list[np.ndarray], vision: Path) -> dict[str, np.ndarray]:
    """`analyse` through a served vision model: its EMBEDDING, and its QUALITY_SCORES' placeholder column as the
    head's score (the spliced quality head, as the gateway reads it)."""
    from evaluation.vision_runtime import SERVED, analyse_with_vision

    started = time.monotonic()
    result = analyse_with_vision(vision, files, with_thumbs=True)
    print(f"  {len(files)} images through {vision} ({time.monotonic() - started:.0f} s)", flush=True)
    outputs = result.outputs[SERVED]
    return {
        "embeddings": outputs[EMBEDDING.name].astype(np.float32),
        "features": result.features.astype(np.float32),
        "thumbs": result.thumbs,
        "valid": result.valid,
        "head": outputs[QUALITY_SCORES.name][:, QUALITY_OUTPUTS.index("placeholder")],
    }


def head_scores(embeddings: np.ndarray, features: np.ndarray, model: Path) -> np.ndarray | None:
    """The served placeholder score of heads/quality.onnx (0.5 = its calibrated threshold); None without a head."""
    if not model.is_file():
        return None
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = session.run(None, {EMBEDDING.name: embeddings, QUALITY_FEATURES.name: features})[0]
    return out[:, QUALITY_OUTPUTS.index("placeholder")]


def library_keys(thumbs: np.ndarray) -> np.ndarray:
    """Every key the served library knows these placeholders by (gateway.services.placeholders): the content box's
    pHash and the whole picture's, of each thumbnail."""
    from gateway.hashing import compute_hashes, whole_phash

    return np.array([k for t in thumbs for k in (compute_hashes(t).phash, whole_phash(t))], dtype=np.uint64)


def library_distances(thumbs: np.ndarray, library: np.ndarray) -> np.ndarray:
    """pHash distance of every image to the nearest key of a library placeholder (`library`: mask of the library
    rows)."""
    from gateway.hashing import compute_hashes, hamming

    keys = library_keys(thumbs[library])
    return np.array([hamming(keys, compute_hashes(t).phash).min() for t in thumbs])


def exemplar_similarities(items: list[Item], embeddings: np.ndarray, k: int, seed: int) -> np.ndarray:
    """[n, k] cosine similarity of each query to k exemplars: real photos of its category from other groups."""
    rng = np.random.default_rng(seed)
    photo_rows = np.array([i for i, it in enumerate(items) if it.kind == "photo"])
    groups = np.array([it.group for it in items])
    cats = np.array([it.category for it in items])
    sims = np.zeros((len(items), k), np.float32)
    for i, item in enumerate(items):
        if item.kind == "library":
            continue
        pool = photo_rows[(cats[photo_rows] == item.category) & (groups[photo_rows] != item.group)]
        chosen = rng.choice(pool, size=k, replace=False)
        sims[i] = embeddings[chosen] @ embeddings[i]
    return sims


def check_vote_rule(sims: np.ndarray, kth_lowest: np.ndarray, exemplars: int, min_votes: int) -> None:
    """The pure rule the gateway runs gives the same answer as the order statistic (on a sample of the queries)."""
    from gateway.decisions.placeholders import VoteRule, exemplar_vote

    rule = VoteRule(exemplars=exemplars, min_votes=min_votes, min_similarity=0.5)
    for i in range(6, len(sims), 97):
        outcome = exemplar_vote(sims[i], rule)
        assert outcome.fired == bool(kth_lowest[i] < 0.5), (i, outcome, kth_lowest[i])


@dataclass
class Signals:
    """Per item: what each mechanism says, its truth and its half."""

    kinds: np.ndarray
    categories: np.ndarray
    truth: np.ndarray  # a placeholder (library, known or unseen)
    head_seen: np.ndarray
    calibration: np.ndarray  # queries (not library rows) of the calibration half
    test: np.ndarray
    library_fires: np.ndarray
    head: np.ndarray | None
    kth_lowest: np.ndarray  # the min_votes-th lowest exemplar similarity: the vote fires below its threshold

    @classmethod
    def measure(
        cls,
        items: list[Item],
        analysed: dict,
        model: Path,
        library_rule: LibraryRule,
        exemplars: int,
        min_votes: int,
        seed: int,
    ) -> Signals:
        kinds = np.array([it.kind for it in items])
        library = kinds == "library"
        emb = analysed["embeddings"]
        head = analysed["head"] if "head" in analysed else head_scores(emb, analysed["features"], model)
        library_fires = library_rule.stands(library_distances(analysed["thumbs"], library), head)
        sims = exemplar_similarities(items, emb, exemplars, seed)
        kth_lowest = np.sort(sims, axis=1)[:, min_votes - 1]  # one number per query decides the vote for every s
        split = np.array([split_of(it) for it in items])
        check_vote_rule(sims, kth_lowest, exemplars, min_votes)
        return cls(
            kinds=kinds,
            categories=np.array([it.category for it in items]),
            truth=kinds != "photo",
            head_seen=np.array([it.head_seen for it in items]),
            calibration=~library & (split == "calibration"),
            test=~library & (split == "test"),
            library_fires=library_fires,
            head=head,
            kth_lowest=kth_lowest,
        )


def rate(flags: np.ndarray, mask: np.ndarray) -> tuple[float, int, int]:
    """(share of `mask` rows flagged, flagged, rows)."""
    n = int(mask.sum())
    hits = int(flags[mask].sum())
    return (hits / n if n else float("nan")), hits, n


def pick_vote_threshold(kth_lowest: np.ndarray, negatives: np.ndarray, budget: float) -> float:
    """Largest similarity threshold whose vote-alone false-positive rate on the `negatives` photos stays within
    `budget`. Not training.metrics.precision_first_threshold: the vote's budget is a false-positive rate on photos
    (an order statistic of the negatives alone), not a precision over both classes."""
    neg = np.sort(kth_lowest[negatives])
    allowed = int(np.floor(budget * len(neg)))
    return float(neg[allowed]) if allowed < len(neg) else 1.0


def choose_combination(
    signals: Signals,
    max_fpr: float,
    vote_fpr: float,
    rows: np.ndarray | None = None,
    head_floors: tuple[float, ...] = HEAD_WITH_VOTE,
) -> tuple[float, float]:
    """(similarity s, head floor h) of `library OR head >= 0.5 OR (vote at similarity < s AND head >= h)`, on the
    calibration half within the false-positive budget `max_fpr`: highest worst-case recall (known, unseen), then the
    most placeholders the vote branch catches on its own (the second opinion that holds where the head's score falls
    short), then the lowest false-positive rate, then the lowest head floor and similarity. The vote must be a real
    signal: s keeps the vote's own false-positive rate within `vote_fpr` (else "vote AND head >= h" degenerates into
    a lower head threshold). `rows`: choose on these queries only (one category's); `head_floors`: the h to try."""
    cal, kinds, head = signals.calibration if rows is None else signals.calibration & rows, signals.kinds, signals.head
    cal_neg = cal & ~signals.truth
    s_max = pick_vote_threshold(signals.kth_lowest, cal_neg, vote_fpr)
    head_alone = (head >= HEAD_ALONE) if head is not None else False
    candidates = []
    for s in VOTE_SIMILARITIES:
        if s > s_max:
            continue
        vote = signals.kth_lowest < s
        for h_lo in head_floors if head is not None else (0.0,):
            branch = vote & (head >= h_lo) if head is not None else vote
            flags = signals.library_fires | branch | head_alone
            fpr = rate(flags, cal_neg)[0]
            if fpr > max_fpr:
                continue
            known_r = rate(flags, cal & (kinds == "known"))[0]
            unseen_r = rate(flags, cal & (kinds == "unseen"))[0]
            candidates.append((min(known_r, unseen_r), rate(branch, cal & signals.truth)[0], -fpr, -h_lo, -s, s, h_lo))
    s_comb, h_lo = max(candidates)[-2:]
    return s_comb, h_lo


def similarity_per_category(signals: Signals, max_fpr: float, vote_fpr: float, h_lo: float) -> dict[str, float]:
    """The gated vote's similarity of each category with at least MIN_CATEGORY_PHOTOS calibration photos, chosen by
    choose_combination's rule on that category's queries alone at the head floor `h_lo`: a category whose photos are
    alike among themselves may hold placeholders to a stricter likeness than the pooled value, which the most varied
    category's photos decide (its own vote budget `vote_fpr` is then spent on its own photos)."""
    chosen = {}
    cal = signals.calibration
    for cat in CATEGORIES:
        in_cat = signals.categories == cat
        enough = (cal & ~signals.truth & in_cat).sum() >= MIN_CATEGORY_PHOTOS and all(
            (cal & in_cat & (signals.kinds == kind)).any() for kind in ("known", "unseen")
        )  # the rule's recall needs placeholders of both kinds in the category
        if enough:
            chosen[cat] = choose_combination(signals, max_fpr, vote_fpr, rows=in_cat, head_floors=(h_lo,))[0]
    return chosen


def vote_per_category(signals: Signals, max_fpr: float) -> dict:
    """The vote alone with a threshold per category (FPR <= max_fpr on the category's calibration photos), on test."""
    cal_neg = signals.calibration & ~signals.truth
    result = {}
    for cat in CATEGORIES:
        in_cat = signals.categories == cat
        threshold = pick_vote_threshold(signals.kth_lowest, cal_neg & in_cat, max_fpr)
        fires = signals.kth_lowest < threshold
        result[cat] = {
            "similarity": threshold,
            "recall": rate(fires, signals.test & signals.truth & in_cat),
            "fpr": rate(fires, signals.test & ~signals.truth & in_cat),
        }
    return result
