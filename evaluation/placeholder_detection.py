"""Placeholder detection on development data: library match, category vote, learned head, and their combination.

    python -m evaluation.placeholder_detection [--variants 40] [--unseen 300] [--in-store 8] [--cache DIR]

Data (../shared/data):
  library          the 6 real placeholders of placeholders/ (Solidus, OpenCart), as POST /v1/placeholders adds them
  known variants   `--variants` seeded transforms of each (evaluation.placeholder_eval.variant: resize, JPEG/PNG,
                   border crop, brightness/contrast, white padding) -> known-variant recall
  unseen           `--unseen` rendered placeholders (training.quality_data text / glyph / grey-box generators)
                   with captions the learned head never saw (UNSEEN_PHRASES: other wordings and languages, or none)
                   and seeds of their own -> unseen recall
  negatives        real product photos: every catalog photo (apparel, gear), every grocery iconic image, and
                   `--in-store` grocery in-store phone photos per product that the quality head was not trained on
                   -> false-positive rate
Every image goes through the production path (DALI preprocessing -> 128 px thumbnail -> pHash; EfficientNet-Lite0
-> embedding; heads/quality.onnx -> placeholder score), cached under `--cache` by content hash.

The vote: each query meets K exemplars of its category (catalog apparel / catalog gear / grocery), drawn from the
real photos of other products (other style / other grocery product), as the gateway's store of recently accepted
images would give it. Placeholder queries get a category at random. Rule parameters and the combination are chosen on
the calibration half (split by group: style, product, caption; known variants by index) and reported on the test half.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.placeholder_eval import variant
from gateway.decisions import VoteRule, exemplar_vote
from loadtest.products import PROJECT_ROOT
from training.splits import role_of

DATA = PROJECT_ROOT.parent / "shared" / "data"
SPLIT_SALT = "imgsel-placeholder-vote:"
GEAR_PREFIXES = ("gear", "lt", "mb", "mg", "ug", "wg")  # Magento Luma: bags, watches, fitness gear
# Captions absent from training.quality_data.PHRASES (the head's training captions).
UNSEEN_PHRASES = (
    "Image not found",
    "No image yet",
    "Product image pending",
    "Picture coming soon",
    "Photo unavailable",
    "No thumbnail",
    "Kein Bild vorhanden",
    "Bild folgt",
    "Imagen no disponible",
    "Sin imagen",
    "Image non disponible",
    "Photo à venir",
    "Immagine non disponibile",
    "Geen afbeelding",
    "Brak zdjęcia",
    "Ingen bild",
    "N/A",
    "TBA",
)
CATEGORIES = ("apparel", "gear", "grocery")


@dataclass
class Item:
    key: str
    kind: str  # library, known, unseen, photo
    group: str  # unit of the calibration/test split; a vote never uses exemplars of the query's own group
    category: str
    head_seen: bool = False  # the quality head was trained on this very image (photos only)
    data: np.ndarray | None = None
    path: str = ""


def split_of(group: str) -> str:
    digest = int(hashlib.sha256((SPLIT_SALT + group).encode()).hexdigest()[:8], 16)
    return "test" if digest / 0xFFFFFFFF < 0.5 else "calibration"


def encode(image: Image.Image, rng: np.random.Generator) -> np.ndarray:
    buffer = io.BytesIO()
    if rng.random() < 0.4:
        image.save(buffer, "PNG")
    else:
        image.convert("RGB").save(buffer, "JPEG", quality=int(rng.integers(70, 96)))
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def unseen_placeholders(n: int, seed: int) -> list[Item]:
    from training import quality_data as qd

    fonts = qd.font_paths()
    items = []
    for i in range(n):
        rng = qd.rng_for("unseen-placeholder", seed, i)
        kind = ("text", "text", "glyph", "glyph", "box")[i % 5]
        phrase = UNSEEN_PHRASES[int(rng.integers(len(UNSEEN_PHRASES)))]
        if kind != "text" and rng.random() < 0.4:
            phrase = None
        font = fonts[int(rng.integers(len(fonts)))] if fonts else None
        if kind == "text":
            image = qd.text_placeholder(rng, phrase, font)
        elif kind == "glyph":
            image = qd.glyph_placeholder(rng, phrase, font)
        else:
            image = qd.grey_box(rng, phrase, font)
        group = f"phrase:{phrase}" if phrase else f"{kind}:{i}"
        category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        items.append(Item(f"unseen:{kind}:{i}", "unseen", group, category, data=encode(image, rng)))
    return items


def head_training_photos() -> set[str]:
    """Files the quality head trained on as photos (its train-role catalog/iconic sources, its in-store picks)."""
    from training.quality_heads import PHONE_PHOTOS_PER_PRODUCT, phone_photos, photo_sources

    seen = {str(path) for path, group in photo_sources(DATA) if role_of(group) == "train"}
    for product, paths in phone_photos(DATA).items():
        if role_of(f"grocery:{product}") == "train":
            seen |= {str(p) for p in sorted(paths)[:: max(1, len(paths) // PHONE_PHOTOS_PER_PRODUCT)]}
    return seen


def head_in_store_picks() -> set[str]:
    from training.quality_heads import PHONE_PHOTOS_PER_PRODUCT, phone_photos

    picks = set()
    for paths in phone_photos(DATA).values():
        chosen = sorted(paths)[:: max(1, len(paths) // PHONE_PHOTOS_PER_PRODUCT)][:PHONE_PHOTOS_PER_PRODUCT]
        picks |= {str(p) for p in chosen}
    return picks


def photos(in_store: int) -> list[Item]:
    from training.quality_heads import phone_photos

    seen = head_training_photos()
    items = []
    for row in csv.DictReader((DATA / "catalog" / "manifest.csv").open()):
        path = DATA / "catalog" / row["file"]
        category = "gear" if row["category"] in GEAR_PREFIXES else "apparel"
        items.append(
            Item(f"photo:{path.name}", "photo", f"catalog:{row['style']}", category, str(path) in seen, path=str(path))
        )
    for path in sorted((DATA / "grocery" / "iconic-images-and-descriptions").rglob("*.jpg")):
        product = path.stem.removesuffix("_Iconic")
        items.append(
            Item(f"photo:{path.name}", "photo", f"grocery:{product}", "grocery", str(path) in seen, path=str(path))
        )
    picks = head_in_store_picks()
    for product, paths in sorted(phone_photos(DATA).items()):
        unused = [p for p in sorted(paths) if str(p) not in picks]
        for p in unused[:: max(1, len(unused) // in_store)][:in_store]:
            items.append(Item(f"photo:{p.relative_to(DATA)}", "photo", f"grocery:{product}", "grocery", path=str(p)))
    return items


def load(item: Item) -> np.ndarray:
    return item.data if item.data is not None else np.fromfile(item.path, dtype=np.uint8)


def analyse(items: list[Item], cache: Path) -> dict[str, np.ndarray]:
    """Embedding, raw quality features, thumbnail and validity of every item, cached by content sha256."""
    cache.mkdir(parents=True, exist_ok=True)
    from build_engines.backbone import backbone_fingerprint

    store_path = cache / f"analysed-{backbone_fingerprint()}.npz"  # embeddings depend on the backbone
    store: dict[str, tuple] = {}
    if store_path.is_file():
        with np.load(store_path) as stored:
            arrays = [stored[name] for name in ("embeddings", "features", "thumbs", "valid")]
            for i, d in enumerate(stored["digests"]):
                store[str(d)] = tuple(a[i] for a in arrays)
    files = [load(item) for item in items]
    digests = [hashlib.sha256(f.tobytes()).hexdigest()[:32] for f in files]
    todo = sorted({d: i for i, d in enumerate(digests) if d not in store}.items(), key=lambda kv: kv[1])
    if todo:
        import torch

        from build_engines.backbone import load_backbone
        from preprocessing.runner import PreprocessRunner

        backbone, runner = load_backbone(), PreprocessRunner(max_batch=32, threads=1)
        started = time.monotonic()
        for start in range(0, len(todo), 32):
            chunk = todo[start : start + 32]
            out = runner.run([files[i] for _, i in chunk])
            with torch.no_grad():
                emb = backbone(torch.from_numpy(out["PIXELS"])).numpy()
            for row, (digest, _) in enumerate(chunk):
                store[digest] = (emb[row], out["QUALITY_FEATURES"][row], out["THUMB"][row], out["VALID"][row, 0])
            print(f"  embedded {start + len(chunk)}/{len(todo)} ({time.monotonic() - started:.0f} s)", flush=True)
        keys = sorted(store)
        np.savez(
            store_path,
            digests=np.array(keys),
            embeddings=np.stack([store[k][0] for k in keys]).astype(np.float32),
            features=np.stack([store[k][1] for k in keys]).astype(np.float32),
            thumbs=np.stack([store[k][2] for k in keys]),
            valid=np.array([bool(store[k][3]) for k in keys]),
        )
    return {
        "embeddings": np.stack([store[d][0] for d in digests]).astype(np.float32),
        "features": np.stack([store[d][1] for d in digests]).astype(np.float32),
        "thumbs": np.stack([store[d][2] for d in digests]),
        "valid": np.array([bool(store[d][3]) for d in digests]),
    }


def head_scores(embeddings: np.ndarray, features: np.ndarray, model: Path) -> np.ndarray | None:
    """The served placeholder score of heads/quality.onnx (0.5 = its calibrated threshold); None without a head."""
    if not model.is_file():
        return None
    import onnxruntime as ort

    from contract.tensors import QUALITY_OUTPUTS

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = session.run(None, {"EMBEDDING": embeddings, "QUALITY_FEATURES": features})[0]
    return out[:, QUALITY_OUTPUTS.index("placeholder")]


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


def rate(flags: np.ndarray, mask: np.ndarray) -> tuple[float, int, int]:
    n = int(mask.sum())
    hits = int(flags[mask].sum())
    return (hits / n if n else float("nan")), hits, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=40)
    parser.add_argument("--unseen", type=int, default=300)
    parser.add_argument("--in-store", type=int, default=8, help="grocery in-store photos per product")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exemplars", type=int, default=11, help="K: exemplars per vote")
    parser.add_argument("--min-votes", type=int, default=5, help="'unlike' votes that call a placeholder")
    parser.add_argument("--max-distance", type=int, default=16, help="library pHash distance (served default)")
    parser.add_argument("--max-fpr", type=float, default=0.005, help="false-positive budget on calibration photos")
    parser.add_argument(
        "--vote-fpr", type=float, default=0.05, help="the vote's own false-positive budget on calibration photos"
    )
    parser.add_argument("--head", type=Path, default=PROJECT_ROOT / "build_engines" / "heads" / "quality.onnx")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/imgsel-phvote"))
    parser.add_argument("--json", type=Path, help="write every number here too")
    args = parser.parse_args(argv)
    known = sorted((DATA / "placeholders").glob("*.png"))
    if not known:
        print(f"no placeholders under {DATA}: nothing to evaluate")
        return 0
    from gateway.hashing import compute_hashes
    from gateway.stores.placeholders import hamming_to_all

    rng = np.random.default_rng(args.seed)
    items = [
        Item(f"library:{p.name}", "library", f"library:{p.name}", "", data=np.fromfile(p, np.uint8)) for p in known
    ]
    for p in known:
        for v in range(args.variants):
            category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
            items.append(
                Item(f"known:{p.name}:{v}", "known", f"known:{v % 2}", category, data=variant(Image.open(p), rng))
            )
    items += unseen_placeholders(args.unseen, args.seed)
    items += photos(args.in_store)
    started = time.monotonic()
    analysed = analyse(items, args.cache)
    print(f"analysed {len(items)} images in {time.monotonic() - started:.0f} s")
    if not analysed["valid"].all():
        bad = [items[i].key for i in np.flatnonzero(~analysed["valid"])]
        raise SystemExit(f"undecodable: {bad[:5]}")

    kinds = np.array([it.kind for it in items])
    lib = kinds == "library"
    queries = ~lib
    emb = analysed["embeddings"]
    phash = np.array([compute_hashes(t).phash for t in analysed["thumbs"]], dtype=np.uint64)
    nearest = np.array([hamming_to_all(int(h), phash[lib]).min() for h in phash])
    library_fires = nearest <= args.max_distance
    head = head_scores(emb, analysed["features"], args.head)
    sims = exemplar_similarities(items, emb, args.exemplars, args.seed)
    # The vote fires when at least min_votes exemplars are 'unlike' (similarity < s): i.e. when the min_votes-th
    # lowest similarity is below s. One number per query decides it for every s.
    kth_lowest = np.sort(sims, axis=1)[:, args.min_votes - 1]
    split = np.array(
        [
            split_of(it.group) if it.kind != "known" else ("test" if it.group.endswith("1") else "calibration")
            for it in items
        ]
    )
    truth = kinds != "photo"
    cal, test = queries & (split == "calibration"), queries & (split == "test")
    head_seen = np.array([it.head_seen for it in items])

    # Consistency check: the pure rule the gateway runs gives the same answer as the order statistic.
    rule = VoteRule(exemplars=args.exemplars, min_votes=args.min_votes, min_similarity=0.5)
    for i in range(6, len(items), 97):
        outcome = exemplar_vote(sims[i], rule)
        assert outcome.fired == bool(kth_lowest[i] < 0.5), (i, outcome, kth_lowest[i])

    def pick_vote_threshold(mask_neg: np.ndarray, budget: float) -> float:
        """Largest similarity threshold whose vote-alone false-positive rate on photos stays within budget."""
        neg = np.sort(kth_lowest[mask_neg])
        allowed = int(np.floor(budget * len(neg)))
        return float(neg[allowed]) if allowed < len(neg) else 1.0

    cal_neg = cal & ~truth
    s_alone = pick_vote_threshold(cal_neg, args.max_fpr)
    vote_alone = kth_lowest < s_alone
    report: dict = {"items": {k: int((kinds == k).sum()) for k in ("library", "known", "unseen", "photo")}}
    print(json.dumps(report["items"]))
    print(f"vote-alone threshold (FPR <= {args.max_fpr} on calibration photos): similarity {s_alone:.4f}")

    # Combination on the calibration half: library OR head >= 0.5 (the served threshold, categories.toml
    # placeholder_max) OR (vote at similarity < s AND head >= h). Chosen: highest worst-case recall of the combination,
    # then the most placeholders the vote branch catches on its own (the second opinion that still holds where the
    # head's score falls short), then the lowest false-positive rate, within the false-positive budget. The vote
    # itself must be a real signal: its similarity threshold keeps its own false-positive rate within --vote-fpr
    # (else "vote AND head >= h" degenerates into a lower head threshold).
    h_hi = 0.5
    s_max = pick_vote_threshold(cal_neg, args.vote_fpr)
    truth_cal = cal & truth
    candidates = []
    for s in np.round(np.arange(0.10, 0.70, 0.01), 2):
        if s > s_max:
            continue
        vote = kth_lowest < s
        for h_lo in (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3) if head is not None else (0.0,):
            branch = vote & (head >= h_lo) if head is not None else vote
            flags = library_fires | branch | ((head >= h_hi) if head is not None else False)
            fpr = rate(flags, cal_neg)[0]
            if fpr > args.max_fpr:
                continue
            known_r = rate(flags, cal & (kinds == "known"))[0]
            unseen_r = rate(flags, cal & (kinds == "unseen"))[0]
            candidates.append((min(known_r, unseen_r), rate(branch, truth_cal)[0], -fpr, -h_lo, -s, s, h_lo))
    best = max(candidates)
    s_comb, h_lo = best[-2:]
    print(
        f"combined rule chosen on calibration: library OR head >= {h_hi} OR (vote at similarity < {s_comb} "
        f"AND head >= {h_lo})"
    )

    rules = {
        "library only": library_fires,
        "vote only": vote_alone,
    }
    if head is not None:
        rules["head only (>= 0.5)"] = head >= 0.5
        rules["library OR head"] = library_fires | (head >= 0.5)
    rules["library OR vote"] = library_fires | vote_alone
    vote_branch = (kth_lowest < s_comb) & ((head >= h_lo) if head is not None else True)
    rules[f"vote branch (similarity < {s_comb}, head >= {h_lo})"] = vote_branch
    rules["combined (chosen)"] = library_fires | ((head >= h_hi) if head is not None else False) | vote_branch
    report["rule"] = {
        "similarity": s_comb,
        "head_with_vote": h_lo,
        "head_alone": h_hi,
        "vote_alone_similarity": s_alone,
        "exemplars": args.exemplars,
        "min_votes": args.min_votes,
        "max_distance": args.max_distance,
    }
    report["results"] = {}
    for part, mask in (("calibration", cal), ("test", test)):
        print(f"\n{part} half")
        print("| rule | known-variant recall | unseen recall | FPR real photos | FPR photos unseen by the head |")
        print("| --- | --- | --- | --- | --- |")
        for name, flags in rules.items():
            k = rate(flags, mask & (kinds == "known"))
            u = rate(flags, mask & (kinds == "unseen"))
            f = rate(flags, mask & ~truth)
            fu = rate(flags, mask & ~truth & ~head_seen)
            report["results"].setdefault(part, {})[name] = {"known": k, "unseen": u, "fpr": f, "fpr_head_unseen": fu}
            print(
                f"| {name} | {k[0]:.4f} ({k[1]}/{k[2]}) | {u[0]:.4f} ({u[1]}/{u[2]}) | {f[0]:.4f} ({f[1]}/{f[2]}) "
                f"| {fu[0]:.4f} ({fu[1]}/{fu[2]}) |"
            )
    # Where the vote stands: similarity order statistics by kind and category (test half).
    print("\nmin_votes-th lowest exemplar similarity, median [5th-95th percentile], test half:")
    for kind in ("known", "unseen", "photo"):
        for cat in CATEGORIES:
            m = test & (kinds == kind) & (np.array([it.category for it in items]) == cat)
            if m.any():
                v = kth_lowest[m]
                low, high = np.percentile(v, 5), np.percentile(v, 95)
                print(f"  {kind:7s} {cat:8s} n={int(m.sum()):4d} {np.median(v):.3f} [{low:.3f}-{high:.3f}]")
    print("\nvote alone, per-category threshold (FPR <= --max-fpr on the category's calibration photos), test half:")
    cats = np.array([it.category for it in items])
    report["vote_per_category"] = {}
    for cat in CATEGORIES:
        threshold = pick_vote_threshold(cal_neg & (cats == cat), args.max_fpr)
        fires = kth_lowest < threshold
        r = rate(fires, test & truth & (cats == cat))
        f = rate(fires, test & ~truth & (cats == cat))
        report["vote_per_category"][cat] = {"similarity": threshold, "recall": r, "fpr": f}
        print(
            f"  {cat:8s} similarity < {threshold:.3f}: placeholder recall {r[0]:.3f} ({r[1]}/{r[2]}), "
            f"FPR {f[0]:.4f} ({f[1]}/{f[2]})"
        )
    if head is not None:
        for part, mask in (("calibration", cal), ("test", test)):
            neg = head[mask & ~truth]
            pos = head[mask & truth]
            print(
                f"head score, {part}: photos max {neg.max():.4f}, 99.5th pct {np.percentile(neg, 99.5):.4f}; "
                f"placeholders min {pos.min():.4f}"
            )
        report["head_model_sha256"] = hashlib.sha256(args.head.read_bytes()).hexdigest()[:16]
        print(f"head model {args.head.name} sha256 {report['head_model_sha256']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
