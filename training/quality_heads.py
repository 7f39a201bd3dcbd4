"""Learned quality heads: blur, small_object and placeholder scores from the backbone embedding and the classical
quality features, trained on synthetic degradations of real product photos and on rendered placeholders.

    python -m training.quality_heads [--data ../shared/data]

Writes build_engines/heads/quality.onnx (inputs EMBEDDING [1280] and QUALITY_FEATURES [2], output QUALITY_SCORES
[3] in contract.tensors.QUALITY_OUTPUTS order) and quality.json (data, label rules, seeds, split, thresholds,
metrics). The per-head decision thresholds are chosen on held-out calibration data, stored in quality.json and baked
into the ONNX output, so a served score of 0.5 is the chosen operating point (categories.toml compares to 0.5).

Data (../shared/data): catalog photos (Magento sample data) and grocery iconic images (Grocery Store Dataset) with
synthetic crops, Gaussian and motion blur, shrinking into white space and onto scenes; rendered "no image"
placeholders and the real ones of placeholders/. Split by source: catalog style / grocery product, with the salted
hash of training.type_heads.is_validation; the validation groups are halved again (salted hash) into a
calibration half (thresholds) and a test half (every reported number). One family of real placeholders is never
trained on (unseen-placeholder generalisation).

Embeddings and features go through the production path (DALI runner + backbone, training.embeddings) and
are cached under .cache/quality_heads/ keyed by the sample list and the generator code.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from build_engines.artifacts import HEADS_DIR
from contract.tensors import EMBEDDING_DIM, QUALITY_OUTPUTS
from preprocessing.pipeline import BLUR_SIDE
from training import quality_data as qd
from training.metrics import at_threshold, precision_first_threshold, roc_auc
from training.splits import TEST_SALT, role_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
CACHE_DIR = PROJECT_ROOT / ".cache" / "quality_heads"
INPUTS = ("EMBEDDING", "QUALITY_FEATURES")
OUTPUT = "QUALITY_SCORES"
SEED = 0
HELD_OUT_PLACEHOLDER_FAMILY = "solidus"  # real placeholders never trained on; measured as unseen
N_TEXT, N_GLYPH, N_BOX = 320, 160, 80  # rendered placeholders
REAL_PLACEHOLDER_VARIANTS = 20
PHONE_PHOTOS_PER_PRODUCT = 4  # training in-store photos per grocery product (held-out products: all of them)
HIDDEN = 64
STEPS = 600
# Chosen on the calibration half: hidden 0 / 32 / 64, weight decay 1e-3 / 1e-2 / 1e-1, 300 / 600 steps, dropout on
# the embedding inputs 0 / 0.5 / 0.8 (dropout is what keeps the blur head from keying on a style's embedding).
WEIGHT_DECAY = 1e-2
# Operating point of every head: the highest calibration recall at precision >= this (best F1 before: it flagged 2 of
# 66 untransformed test photos as blurry; 0.97 / 0.98 / 0.99 were compared, see MODELS.md).
MIN_PRECISION = 0.99
EMBEDDING_DROPOUT = 0.5
FEATURE_FLOOR = (1.0, 1e-3)  # log10(feature + floor): Laplacian variance, object area fraction

PHOTO_KINDS = (
    "original",  # the untransformed file
    "crop",  # crop-and-resize, sharp
    "soft",  # crop-and-resize + Gaussian sigma 0.15-0.4 px at working resolution: acceptable
    "blur",  # crop-and-resize + Gaussian sigma 1-6 px at working resolution
    "mild_blur",  # full resolution (>= 1000 px photos), Gaussian sigma 0.2-0.5 % of the longer side
    "motion",  # crop-and-resize + straight motion blur, standard deviation 1-5 px at working resolution
    "sweep",  # crop-and-resize + Gaussian sigma 0.1-4 px (log-uniform), labelled by the rule
    "small_white",  # object box shrunk to 1-7.5 % of a white canvas
    "large_white",  # object box at 13-50 % of a white canvas
    "small_scene",  # object cut out and pasted at 1-7.5 % of a scene (in-store photo or procedural)
    "large_scene",  # same at 13-60 %
    "flat",  # crop-and-resize turned into a flat-colour illustration: a product, not a placeholder
    "in_store",  # an untransformed in-store phone photo (grocery): not small, not a placeholder; blur unlabelled
)
PLACEHOLDER_KINDS = ("ph_text", "ph_glyph", "ph_box", "ph_real")
# Photo kinds on a plain studio background (where the classical measures are meant to work) and on scenes.
STUDIO_KINDS = (
    "original",
    "crop",
    "soft",
    "blur",
    "mild_blur",
    "motion",
    "sweep",
    "small_white",
    "large_white",
    "flat",
)
SCENE_KINDS = ("small_scene", "large_scene", "in_store")


@dataclass(frozen=True)
class Spec:
    key: str  # unique; also seeds the sample's generator
    kind: str
    source: str  # image file ("" for rendered placeholders)
    group: str  # unit of the split
    role: str  # train, calibration, test (test: every reported number)
    background: str = ""  # scene kinds: an in-store photo, or "" for a procedural background


# ---------------------------------------------------------------------------------------------- sample list


def photo_sources(data: Path) -> list[tuple[Path, str]]:
    """(file, group): every catalog photo (group = style) and every grocery iconic image (group = product)."""
    sources = []
    manifest = data / "catalog" / "manifest.csv"
    for row in csv.DictReader(manifest.open()):
        sources.append((data / "catalog" / row["file"], f"catalog:{row['style']}"))
    for path in sorted((data / "grocery" / "iconic-images-and-descriptions").rglob("*.jpg")):
        sources.append((path, f"grocery:{path.stem.removesuffix('_Iconic')}"))
    return sources


def phone_photos(data: Path) -> dict[str, list[Path]]:
    """In-store photos by product (grocery train.txt + val.txt)."""
    by_product: dict[str, list[Path]] = {}
    for listing in ("train.txt", "val.txt"):
        path = data / "grocery" / listing
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            relative = line.split(",")[0].strip()
            if relative:
                by_product.setdefault(Path(relative).parent.name, []).append(data / "grocery" / relative)
    return by_product


def build_specs(data: Path) -> list[Spec]:
    specs: list[Spec] = []
    phones = phone_photos(data)
    # Scene backgrounds come from in-store photos of products on the same side of the split.
    backgrounds = {role: [] for role in ("train", "calibration", "test")}
    for product, paths in sorted(phones.items()):
        backgrounds[role_of(f"grocery:{product}")].extend(sorted(paths)[::6])
    for path, group in photo_sources(data):
        role = role_of(group)
        with Image.open(path) as image:
            longer = max(image.size)
        for kind in PHOTO_KINDS:
            if kind == "in_store" or kind == "mild_blur" and longer < 1000:
                continue
            key = f"{kind}:{path.name}"
            background = ""
            if kind.endswith("_scene"):
                pool = backgrounds[role]
                if pool and qd.rng_for(SEED, key, "background").random() < 0.6:
                    background = str(pool[int(qd.rng_for(SEED, key, "pick").integers(len(pool)))])
            specs.append(Spec(key, kind, str(path), group, role, background))
    for product, paths in sorted(phones.items()):
        group = f"grocery:{product}"
        chosen = sorted(paths)[:: max(1, len(paths) // PHONE_PHOTOS_PER_PRODUCT)][:PHONE_PHOTOS_PER_PRODUCT]
        if role_of(group) != "train":  # every held-out phone photo: real negatives for the false-reject rates
            chosen = sorted(paths)
        specs.extend(
            Spec(f"in_store:{p.relative_to(data / 'grocery')}", "in_store", str(p), group, role_of(group))
            for p in chosen
        )

    for i in range(N_TEXT):
        phrase = qd.PHRASES[i % len(qd.PHRASES)]
        specs.append(Spec(f"ph_text:{i}", "ph_text", "", f"phrase:{phrase}", role_of(f"phrase:{phrase}")))
    for kind, count in (("ph_glyph", N_GLYPH), ("ph_box", N_BOX)):
        for i in range(count):
            rng = qd.rng_for(SEED, kind, i, "caption")
            phrase = qd.PHRASES[int(rng.integers(len(qd.PHRASES)))] if rng.random() < 0.5 else None
            group = f"phrase:{phrase}" if phrase else f"{kind}:{i}"
            specs.append(Spec(f"{kind}:{i}", kind, "", group, role_of(group)))
    for path in sorted((data / "placeholders").glob("*.png")):
        family = path.stem.split("_")[0]
        role = "test" if family == HELD_OUT_PLACEHOLDER_FAMILY else "train"
        for i in range(REAL_PLACEHOLDER_VARIANTS + 1):  # variant 0: the file itself on white
            specs.append(Spec(f"ph_real:{path.name}:{i}", "ph_real", str(path), f"real-placeholder:{family}", role))
    return specs


# ---------------------------------------------------------------------------------------------- rendering


def encode(image: Image.Image, rng: np.random.Generator, png: bool = False) -> np.ndarray:
    buffer = io.BytesIO()
    if png:
        image.save(buffer, "PNG")
    else:
        image.convert("RGB").save(buffer, "JPEG", quality=int(rng.integers(80, 96)))
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def render(spec: Spec, fonts: list[Path] | None = None) -> tuple[np.ndarray, dict]:
    """Encoded file and its labels/metadata: {"labels": {head: 1.0 | 0.0 | None}, "sigma_work": ..., "area": ...}."""
    rng = qd.rng_for(SEED, spec.key)
    labels: dict[str, float | None] = {"blur": None, "small_object": None, "placeholder": None}
    meta: dict[str, float | None] = {"sigma_work": None, "area": None}
    if spec.kind in PLACEHOLDER_KINDS:
        labels["placeholder"] = 1.0
        fonts = qd.font_paths() if fonts is None else fonts
        font = fonts[int(rng.integers(len(fonts)))] if fonts else None
        phrase = spec.group.removeprefix("phrase:") if spec.group.startswith("phrase:") else None
        if spec.kind == "ph_text":
            image = qd.text_placeholder(rng, phrase, font)
        elif spec.kind == "ph_glyph":
            image = qd.glyph_placeholder(rng, phrase, font)
        elif spec.kind == "ph_box":
            image = qd.grey_box(rng, phrase, font)
        else:
            plain = spec.key.endswith(":0")
            with Image.open(spec.source) as png:
                image = qd.real_placeholder_variant(png, rng, plain=plain)
        return encode(image, rng, png=bool(rng.random() < 0.5)), {"labels": labels, **meta}

    labels["placeholder"] = 0.0
    if spec.kind in ("original", "in_store"):
        data = np.fromfile(spec.source, dtype=np.uint8)
        with Image.open(spec.source) as image:
            area = qd.measured_area(image)
        if spec.kind == "original":
            labels.update(blur=0.0, small_object=qd.small_object_label(area))
        else:  # the product in hand or a crate of it fills the frame; some of these photos are really blurry
            labels.update(small_object=0.0)
        return data, {"labels": labels, "sigma_work": 0.0, "area": area}

    with Image.open(spec.source) as opened:
        if spec.kind.endswith(("_white", "_scene")) and min(opened.size) >= 800:
            opened.draft("RGB", (opened.width // 2, opened.height // 2))  # shrunk anyway: decode JPEG at 1/2 scale
        source = opened.convert("RGB")
    sigma_work = 0.0
    if spec.kind in ("crop", "soft", "blur", "motion", "sweep"):
        image = qd.crop_and_resize(source, rng)
        area = qd.measured_area(image)
        scale = qd.working_scale(image.size)
        if spec.kind == "soft":
            sigma_work = rng.uniform(0.15, qd.BLUR_NEGATIVE_SIGMA)
        elif spec.kind == "blur":
            sigma_work = math.exp(rng.uniform(math.log(qd.BLUR_POSITIVE_SIGMA), math.log(6.0)))
        elif spec.kind == "sweep":
            sigma_work = math.exp(rng.uniform(math.log(0.1), math.log(4.0)))
        elif spec.kind == "motion":
            sigma_work = math.exp(rng.uniform(math.log(qd.BLUR_POSITIVE_SIGMA), math.log(5.0)))
        if spec.kind == "motion":
            image = qd.motion_blur(image, sigma_work * math.sqrt(12) / scale, rng.uniform(0, 180))
        elif sigma_work > 0:
            image = qd.gaussian_blur(image, sigma_work / scale)
        labels.update(blur=qd.blur_label(sigma_work), small_object=qd.small_object_label(area))
    elif spec.kind == "flat":
        image = qd.flat_colours(qd.crop_and_resize(source, rng, max_side=1000), rng)
        area = qd.measured_area(image)
        labels.update(blur=0.0, small_object=qd.small_object_label(area))
    elif spec.kind == "mild_blur":
        sigma = rng.uniform(0.002, 0.005) * max(source.size)
        image = qd.gaussian_blur(source, sigma)
        sigma_work = sigma * qd.working_scale(source.size)
        area = qd.measured_area(source)
        labels.update(blur=qd.blur_label(sigma_work), small_object=qd.small_object_label(area))
    else:
        small = spec.kind.startswith("small")
        target = rng.uniform(0.01, 0.075) if small else rng.uniform(0.13, 0.5 if spec.kind == "large_white" else 0.6)
        if spec.kind.endswith("_white"):
            image, area = qd.shrink_on_white(source, target, rng)
        else:
            background = None
            if spec.background:
                with Image.open(spec.background) as opened:
                    background = opened.convert("RGB")
            image, area = qd.paste_on_scene(source, background, target, rng)
        labels.update(blur=0.0, small_object=qd.small_object_label(area))
    return encode(image, rng), {"labels": labels, "sigma_work": sigma_work, "area": area}


# ---------------------------------------------------------------------------------------------- dataset (cached)


@dataclass
class Dataset:
    specs: list[Spec]
    embeddings: np.ndarray  # [n, 1280]
    features: np.ndarray  # [n, 2] raw QUALITY_FEATURES
    labels: np.ndarray  # [n, 3] 1/0, NaN = not labelled
    sigma_work: np.ndarray  # [n] NaN for placeholders
    area: np.ndarray  # [n] NaN for placeholders
    sizes: np.ndarray  # [n, 2] height, width as decoded (ORIG_SIZE)

    def rows(self, role: str | None = None, kinds: tuple[str, ...] | None = None) -> np.ndarray:
        keep = [
            i
            for i, s in enumerate(self.specs)
            if (role is None or s.role == role) and (kinds is None or s.kind in kinds)
        ]
        return np.array(keep, dtype=int)


def cache_key(specs: list[Spec]) -> str:
    """Changes with anything that changes the samples' pixels or labels: the generators, render(), the specs."""
    import inspect

    from build_engines.backbone import backbone_fingerprint

    digest = hashlib.sha256(f"seed={SEED} backbone={backbone_fingerprint()}".encode())
    digest.update(Path(qd.__file__).read_bytes())
    for function in (render, encode):
        digest.update(inspect.getsource(function).encode())
    for spec in specs:
        digest.update(json.dumps(asdict(spec), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def render_all(specs: list[Spec], workers: int = 1, window: int = 64):
    """render() of every spec, in order; with `workers` > 1 in worker processes, at most two windows in flight
    (the images are rendered while the previous window runs through the preprocess model and the backbone)."""
    if workers <= 1:
        fonts = qd.font_paths()
        yield from (render(spec, fonts) for spec in specs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        windows = [specs[i : i + window] for i in range(0, len(specs), window)]
        pending = [pool.map(render, w) for w in windows[:2]]
        for index in range(len(windows)):
            results = list(pending.pop(0))
            if index + 2 < len(windows):
                pending.append(pool.map(render, windows[index + 2]))
            yield from results


class SampleStore:
    """Embeddings and features of rendered samples by the sha256 of their encoded bytes: a change to one generator
    re-embeds only the samples whose pixels changed. Content-addressed, so it can never serve stale results."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if path.is_file():
            stored = np.load(path)
            for i, digest in enumerate(stored["digests"]):
                self.rows[str(digest)] = (stored["embeddings"][i], stored["features"][i], stored["sizes"][i])

    def save(self, keep: set[str]) -> None:
        digests = sorted(d for d in self.rows if d in keep)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            self.path,
            digests=np.array(digests),
            embeddings=np.stack([self.rows[d][0] for d in digests]),
            features=np.stack([self.rows[d][1] for d in digests]),
            sizes=np.stack([self.rows[d][2] for d in digests]),
        )


def build_dataset(specs: list[Spec], cache_dir: Path = CACHE_DIR, verbose: bool = True, workers: int = 2) -> Dataset:
    """Render every sample and run the new ones through the DALI runner and the backbone (production path)."""
    from build_engines.backbone import load_backbone
    from preprocessing.runner import PreprocessRunner
    from training.embeddings import BATCH, analyse_encoded

    names = ("embeddings", "features", "labels", "sigma_work", "area", "sizes")
    cache = cache_dir / f"dataset-{cache_key(specs)}.npz"
    if cache.is_file():
        stored = np.load(cache)
        return Dataset(specs, *(stored[k] for k in names))
    from build_engines.backbone import backbone_fingerprint

    store = SampleStore(cache_dir / f"samples-{backbone_fingerprint()}.npz")  # embeddings depend on the backbone
    backbone, runner = None, None
    labels, sigma, area, digests, pending = [], [], [], [], []
    started = time.monotonic()

    def flush() -> None:
        nonlocal backbone, runner
        backbone = backbone or load_backbone()
        runner = runner or PreprocessRunner(max_batch=BATCH)
        out = analyse_encoded([data for _, data in pending], backbone, runner=runner)
        for row, (digest, _) in enumerate(pending):
            if not out.valid[row]:
                raise SystemExit(f"a generated sample the preprocess model could not decode ({digest})")
            store.rows[digest] = (out.embeddings[row], out.features[row], out.sizes[row])
        pending.clear()

    for i, (data, meta) in enumerate(render_all(specs, workers)):
        labels.append([np.nan if meta["labels"][h] is None else meta["labels"][h] for h in QUALITY_OUTPUTS])
        sigma.append(np.nan if meta["sigma_work"] is None else meta["sigma_work"])
        area.append(np.nan if meta["area"] is None else meta["area"])
        digest = hashlib.sha256(data.tobytes()).hexdigest()[:32]
        digests.append(digest)
        if digest not in store.rows and all(digest != d for d, _ in pending):
            pending.append((digest, data))
            if len(pending) == BATCH:
                flush()
        if verbose and (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(specs)} samples, {time.monotonic() - started:.0f} s", flush=True)
    if pending:
        flush()
    dataset = Dataset(
        specs,
        np.stack([store.rows[d][0] for d in digests]).astype(np.float32),
        np.stack([store.rows[d][1] for d in digests]).astype(np.float32),
        np.array(labels, np.float32),
        np.array(sigma, np.float32),
        np.array(area, np.float32),
        np.stack([store.rows[d][2] for d in digests]).astype(np.int32),
    )
    store.save(set(digests))
    np.savez(cache, **{k: getattr(dataset, k) for k in names})
    return dataset


# ---------------------------------------------------------------------------------------------- model


def log_features(features: torch.Tensor, floor: torch.Tensor | None = None) -> torch.Tensor:
    """log10 of the raw QUALITY_FEATURES (Laplacian variance spans decades; so does a small object's area)."""
    floor = torch.tensor(FEATURE_FLOOR, dtype=features.dtype) if floor is None else floor
    return torch.log10(torch.clamp(features, min=0.0) + floor)


class QualityHead(nn.Module):
    """[embedding, log features] -> standardise -> (hidden ReLU layer) -> logits -> sigmoid(logit - offset).

    `offset` is the logit of each head's chosen threshold: the served score crosses 0.5 exactly there.
    `columns` limits the inputs (for the ablations of the report): "both", "embedding" or "features".
    """

    def __init__(
        self, hidden: int = HIDDEN, outputs: int = len(QUALITY_OUTPUTS), columns: str = "both", dropout: float = 0.0
    ):
        super().__init__()
        self.embedding_dropout = nn.Dropout(dropout)  # training only: no single embedding direction decides
        width = {"both": EMBEDDING_DIM + 2, "embedding": EMBEDDING_DIM, "features": 2}[columns]
        self.columns = columns
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("offset", torch.zeros(outputs))
        self.register_buffer("feature_floor", torch.tensor(FEATURE_FLOOR))
        self.net = (
            nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, outputs))
            if hidden
            else nn.Linear(width, outputs)
        )

    def inputs(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        logs = log_features(features, self.feature_floor)
        x = torch.cat({"both": [embedding, logs], "embedding": [embedding], "features": [logs]}[self.columns], dim=1)
        x = (x - self.mean) / self.std
        if self.training and self.embedding_dropout.p > 0 and self.columns != "features":
            x = torch.cat([self.embedding_dropout(x[:, :EMBEDDING_DIM]), x[:, EMBEDDING_DIM:]], dim=1)
        return x

    def logits(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(embedding, features))

    def forward(self, embedding: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(embedding, features) - self.offset)


def train(
    embeddings: np.ndarray,
    features: np.ndarray,
    labels: np.ndarray,
    hidden: int = HIDDEN,
    columns: str = "both",
    steps: int = STEPS,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = SEED,
    dropout: float = EMBEDDING_DROPOUT,
) -> QualityHead:
    """Full-batch Adam on masked, class-balanced binary cross-entropy (NaN labels do not count)."""
    torch.manual_seed(seed)
    head = QualityHead(hidden, labels.shape[1], columns, dropout)
    e, f = torch.from_numpy(embeddings), torch.from_numpy(features)
    with torch.no_grad():
        x = torch.cat({"both": [e, log_features(f)], "embedding": [e], "features": [log_features(f)]}[columns], 1)
        head.mean.copy_(x.mean(0))
        head.std.copy_(x.std(0).clamp(min=1e-6))
    y = torch.from_numpy(np.nan_to_num(labels, nan=0.0))
    known = torch.from_numpy(~np.isnan(labels)).float()
    positives = (y * known).sum(0)
    negatives = ((1 - y) * known).sum(0)
    # Each head's positives and negatives weigh half of that head's loss.
    weight = known * (y * (0.5 / positives.clamp(min=1)) + (1 - y) * (0.5 / negatives.clamp(min=1)))
    optimiser = torch.optim.Adam(head.parameters(), lr=3e-3, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    for _ in range(steps):
        optimiser.zero_grad()
        loss = (loss_fn(head.logits(e, f), y) * weight).sum()
        loss.backward()
        optimiser.step()
    return head.eval()


def predict(head: QualityHead, embeddings: np.ndarray, features: np.ndarray, calibrated: bool = True) -> np.ndarray:
    with torch.no_grad():
        e, f = torch.from_numpy(embeddings), torch.from_numpy(features)
        return (head(e, f) if calibrated else torch.sigmoid(head.logits(e, f))).numpy()


def export(head: QualityHead, path: Path) -> float:
    """ONNX (opset 17, one file, dynamic batch) with a parity check on fresh random inputs; returns the error."""
    from build_engines.export import export_onnx, max_parity_error

    generator = torch.Generator().manual_seed(1)
    example = (torch.randn(2, EMBEDDING_DIM, generator=generator), torch.rand(2, 2, generator=generator) * 1000)
    export_onnx(head, example, path, list(INPUTS), OUTPUT)
    fresh = (
        torch.nn.functional.normalize(torch.randn(16, EMBEDDING_DIM, generator=generator)),
        torch.rand(16, 2, generator=generator) * torch.tensor([3000.0, 1.0]),
    )
    error = max_parity_error(head, path, fresh)
    if error > 1e-5:
        raise RuntimeError(f"{path.name}: ONNX parity error {error:.2e}")
    return error


# ---------------------------------------------------------------------------------------------- metrics


def head_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    known = ~np.isnan(labels)
    s, t = scores[known], labels[known].astype(int)
    auc = roc_auc(s, t)
    return {"roc_auc": None if auc is None else round(auc, 4), **at_threshold(s, t, threshold)}


def laplacian_baseline(features: np.ndarray) -> np.ndarray:
    """The interim classical blur score (classical_quality.json: logistic in log10 of the Laplacian variance)."""
    from build_engines.quality import ClassicalQualityHead, load_params

    with torch.no_grad():
        return ClassicalQualityHead(load_params())(torch.from_numpy(features)).numpy()


# ---------------------------------------------------------------------------------------------- report


def recall_at_fpr(scores: np.ndarray, truth: np.ndarray, fpr: float = 0.05) -> float:
    """Recall when the threshold lets `fpr` of the negatives through (the negatives' 1 - fpr quantile)."""
    threshold = np.quantile(scores[truth == 0], 1 - fpr)
    return float((scores[truth == 1] > threshold).mean())


def downscaling_study(ds: Dataset, train_rows: np.ndarray, shipped: QualityHead) -> dict:
    """What the 224 px backbone input hides: blur-only heads on the embedding, on the features, on both, judged on
    large validation photos (longer side >= 1000 px): originals vs mild blur (sigma 0.2-0.5 % of the longer side).
    Also: the Laplacian variance measured at 512 px (served) vs at 384 px (a cheaper preprocess), and the same heads
    on every blur-labelled test image."""
    blur_train = train_rows[~np.isnan(ds.labels[train_rows, 0])]
    study = np.array(
        [
            i
            for i in range(len(ds.specs))
            if ds.specs[i].role in ("calibration", "test")
            and ds.specs[i].kind in ("original", "mild_blur")
            and ds.specs[i].group.startswith("catalog:")
            and ds.sizes[i].max() >= 1000
        ]
    )
    truth = (np.array([ds.specs[i].kind for i in study]) == "mild_blur").astype(int)
    relative = ds.sigma_work[study] / BLUR_SIDE  # sigma / longer side (the working copy is 512 px here)
    mildest = (truth == 0) | (relative < 0.003)
    test_rows = ds.rows("test")
    test_blur = test_rows[~np.isnan(ds.labels[test_rows, 0])]
    result = {
        "data": "validation catalog photos >= 1000 px (calibration + test halves; thresholds play no part): "
        "originals vs Gaussian blur sigma 0.2-0.5 % of the longer side",
        "originals": int((truth == 0).sum()),
        "mildly_blurred": int(truth.sum()),
        "of_which_sigma_0.2_to_0.3_percent": int((truth[mildest] == 1).sum()),
        "heads": {},
    }

    def describe(name: str, study_scores: np.ndarray, test_scores: np.ndarray | None) -> None:
        result["heads"][name] = {
            "roc_auc": round(roc_auc(study_scores, truth), 4),
            "roc_auc_sigma_0.2_to_0.3_percent": round(roc_auc(study_scores[mildest], truth[mildest]), 4),
            "recall_at_5_percent_fpr": round(recall_at_fpr(study_scores, truth), 4),
            "test_all_blur_kinds_roc_auc": None
            if test_scores is None
            else round(roc_auc(test_scores, ds.labels[test_blur, 0].astype(int)), 4),
        }

    y = ds.labels[blur_train, :1]
    for name, columns, hidden, dropout in (
        ("embedding only (224 px backbone input), logistic", "embedding", 0, 0.0),
        ("embedding only, MLP 64", "embedding", HIDDEN, EMBEDDING_DROPOUT),
        ("features only (Laplacian variance at <= 512 px, box area), logistic", "features", 0, 0.0),
        ("embedding + features, MLP 64, blur only", "both", HIDDEN, EMBEDDING_DROPOUT),
    ):
        head = train(ds.embeddings[blur_train], ds.features[blur_train], y, hidden, columns, dropout=dropout)
        describe(
            name,
            predict(head, ds.embeddings[study], ds.features[study])[:, 0],
            predict(head, ds.embeddings[test_blur], ds.features[test_blur])[:, 0],
        )
    describe(
        "shipped quality head (blur column)",
        predict(shipped, ds.embeddings[study], ds.features[study])[:, 0],
        predict(shipped, ds.embeddings[test_blur], ds.features[test_blur])[:, 0],
    )
    describe(
        "variance of the Laplacian at 512 px (served measure) alone", -ds.features[study, 0], -ds.features[test_blur, 0]
    )
    describe("variance of the Laplacian at 384 px alone", -laplacian_at_side([ds.specs[i] for i in study], 384), None)
    return result


def laplacian_at_side(specs: list[Spec], side: int) -> np.ndarray:
    """Re-run the preprocess model with the blur working copy at `side` px (same samples, regenerated)."""
    import preprocessing.pipeline as pipeline
    from preprocessing.runner import PreprocessRunner

    saved = pipeline.BLUR_SIDE
    pipeline.BLUR_SIDE = side
    try:
        runner = PreprocessRunner(max_batch=32)
        fonts = qd.font_paths()
        out = []
        for start in range(0, len(specs), 32):
            files = [render(s, fonts)[0] for s in specs[start : start + 32]]
            out.append(runner.run(files)["QUALITY_FEATURES"][:, 0])
    finally:
        pipeline.BLUR_SIDE = saved
    return np.concatenate(out)


def latency(path: Path) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    result = {}
    for batch in (1, 64):
        feeds = {
            "EMBEDDING": np.random.default_rng(0).normal(size=(batch, EMBEDDING_DIM)).astype(np.float32),
            "QUALITY_FEATURES": np.full((batch, 2), 500.0, np.float32),
        }
        for _ in range(20):
            session.run(None, feeds)
        repeats = 400 if batch == 1 else 50
        started = time.perf_counter()
        for _ in range(repeats):
            session.run(None, feeds)
        per_image_us = (time.perf_counter() - started) / repeats / batch * 1e6
        result[f"batch_{batch}_us_per_image"] = round(per_image_us, 1)
    return result


def count_by(ds: Dataset, rows: np.ndarray) -> dict:
    counts: dict[str, int] = {}
    for i in rows:
        counts[ds.specs[i].kind] = counts.get(ds.specs[i].kind, 0) + 1
    return counts


def run(data: Path, out_dir: Path, cache_dir: Path = CACHE_DIR, workers: int = 2) -> dict:
    specs = build_specs(data)
    print(f"{len(specs)} samples; embedding through the DALI runner + backbone (cached in {cache_dir})", flush=True)
    ds = build_dataset(specs, cache_dir, workers=workers)
    train_rows, calib_rows, test_rows = (ds.rows(role) for role in ("train", "calibration", "test"))
    head = train(ds.embeddings[train_rows], ds.features[train_rows], ds.labels[train_rows])

    # Thresholds on the logit scale (a gap between the classes is split in the middle of the logits), precision-first.
    with torch.no_grad():
        calib_logits = head.logits(*(torch.from_numpy(a[calib_rows]) for a in (ds.embeddings, ds.features))).numpy()
    offsets = []
    for j in range(len(QUALITY_OUTPUTS)):
        known = ~np.isnan(ds.labels[calib_rows, j])
        truth = ds.labels[calib_rows, j][known].astype(int)
        offsets.append(precision_first_threshold(calib_logits[known, j], truth, MIN_PRECISION))
    with torch.no_grad():
        head.offset.copy_(torch.tensor(offsets))
    thresholds = {name: 1 / (1 + math.exp(-o)) for name, o in zip(QUALITY_OUTPUTS, offsets)}

    scores = predict(head, ds.embeddings, ds.features)  # calibrated: 0.5 is each head's decision point
    classical = laplacian_baseline(ds.features)
    metrics = {}
    for role, rows in (("test", test_rows), ("calibration", calib_rows)):
        role_metrics = {
            name: head_metrics(scores[rows, j], ds.labels[rows, j]) for j, name in enumerate(QUALITY_OUTPUTS)
        }
        role_metrics["blur_baseline_laplacian"] = head_metrics(classical[rows, 0], ds.labels[rows, 0])
        role_metrics["small_object_baseline_box_area"] = head_metrics(classical[rows, 1], ds.labels[rows, 1])
        for background, kinds in (("studio", STUDIO_KINDS), ("scene", SCENE_KINDS)):
            part = ds.rows(role, kinds)
            for j, name in ((0, "blur"), (1, "small_object")):
                role_metrics[f"{name}_{background}_only"] = head_metrics(scores[part, j], ds.labels[part, j])
                role_metrics[f"{name}_{background}_only_classical"] = head_metrics(
                    classical[part, j], ds.labels[part, j]
                )
        metrics[role] = role_metrics

    test_kinds = {}
    for kind in PHOTO_KINDS + PLACEHOLDER_KINDS:
        rows = ds.rows("test", (kind,))
        if rows.size:
            test_kinds[kind] = {
                "n": int(rows.size),
                "flagged": {
                    name: round(float((scores[rows, j] >= 0.5).mean()), 4) for j, name in enumerate(QUALITY_OUTPUTS)
                },
            }

    def flag_rates(rows: np.ndarray) -> dict:
        return {
            "n": int(rows.size),
            "flagged_any": round(float((scores[rows] >= 0.5).any(axis=1).mean()), 4),
            **{f"{name}": round(float((scores[rows, j] >= 0.5).mean()), 4) for j, name in enumerate(QUALITY_OUTPUTS)},
            "classical_blur": round(float((classical[rows, 0] >= 0.5).mean()), 4),
            "classical_small_object": round(float((classical[rows, 1] >= 0.5).mean()), 4),
        }

    real = ds.rows("test", ("original",))
    untransformed = {
        "note": "share of untransformed held-out photos flagged (score >= 0.5): false positives, these are fine",
        "catalog_and_grocery_iconic": flag_rates(real),
        "catalog": flag_rates(np.array([i for i in real if ds.specs[i].group.startswith("catalog:")])),
        "grocery_iconic": flag_rates(np.array([i for i in real if ds.specs[i].group.startswith("grocery:")])),
        "grocery_in_store": {
            **flag_rates(ds.rows("test", ("in_store",))),
            "note": "phone photos: small_object / placeholder flags are false positives; blur is unlabelled "
            "(some of these photos are really blurry), its rate is for information",
        },
    }
    sweep = ds.rows("test", ("sweep", "soft", "blur", "crop"))
    bins = [0.0, 0.25, 0.4, 0.6, 0.8, 1.0, 1.5, 2.5, 100.0]
    by_sigma = []
    for low, high in zip(bins[:-1], bins[1:]):
        sel = sweep[(ds.sigma_work[sweep] >= low) & (ds.sigma_work[sweep] < high)]
        if sel.size:
            by_sigma.append(
                {
                    "sigma_work_px": [low, high],
                    "n": int(sel.size),
                    "flagged_blur": round(float((scores[sel, 0] >= 0.5).mean()), 4),
                    "classical_flagged_blur": round(float((classical[sel, 0] >= 0.5).mean()), 4),
                }
            )
    held_out = ds.rows("test", ("ph_real",))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "quality.onnx"
    parity = export(head, path)
    report = {
        "model": "quality",
        "outputs": list(QUALITY_OUTPUTS),
        "inputs": {
            "EMBEDDING": "backbone embedding [1280]",
            "QUALITY_FEATURES": "raw [laplacian_variance, "
            "object_area_fraction] from the preprocess model; log10(x + floor) inside the model",
            "feature_floor": list(FEATURE_FLOOR),
        },
        "architecture": f"standardise -> Linear({EMBEDDING_DIM + 2}, {HIDDEN}) -> ReLU -> Linear({HIDDEN}, 3) -> "
        "sigmoid(logit - logit(threshold))",
        "thresholds": {
            "note": f"chosen on the calibration half (highest recall at precision >= {MIN_PRECISION}, on the logit "
            "scale); as raw sigmoid probabilities. The exported model subtracts logit(threshold), so the served "
            "score is 0.5 exactly at the threshold (categories.toml *_max = 0.5).",
            **{name: round(t, 4) for name, t in thresholds.items()},
            "logit_offsets": {name: round(o, 4) for name, o in zip(QUALITY_OUTPUTS, offsets)},
        },
        "labels": {
            "blur": f"Gaussian sigma (or motion-blur length / sqrt(12)) at the <= {qd.BLUR_SIDE} px working "
            f"resolution: >= {qd.BLUR_POSITIVE_SIGMA} px blurry, <= {qd.BLUR_NEGATIVE_SIGMA} px acceptable "
            "(untransformed, crop-and-resize and mildly soft copies), in between unlabelled",
            "small_object": f"object box area fraction < {qd.SMALL_POSITIVE_AREA} small, >= {qd.SMALL_NEGATIVE_AREA} "
            "fine, in between unlabelled",
            "placeholder": "1 for rendered and real placeholders, 0 for every photo-derived image",
        },
        "data": {
            "root": str(data),
            "catalog": "catalog/*.jpg (Magento 2 sample data, OSL-3.0/AFL-3.0)",
            "grocery": "grocery iconic images, in-store photos as scene backgrounds (Grocery Store Dataset, MIT)",
            "placeholders": "placeholders/*.png (Solidus BSD-3, OpenCart GPLv3); rendered ones with DejaVu/Liberation "
            f"fonts; real family held out: {HELD_OUT_PLACEHOLDER_FAMILY}",
            "photo_kinds": list(PHOTO_KINDS),
            "placeholder_kinds": list(PLACEHOLDER_KINDS),
        },
        "seed": SEED,
        "split": "by source: catalog style, grocery product, placeholder phrase (type_heads.is_validation, salted); "
        f"validation groups halved into calibration / test by a second salted sha256 ({TEST_SALT!r})",
        "counts": {role: count_by(ds, ds.rows(role)) for role in ("train", "calibration", "test")},
        "training": {
            "steps": STEPS,
            "optimizer": "Adam lr 3e-3 full batch",
            "weight_decay": WEIGHT_DECAY,
            "embedding_dropout": EMBEDDING_DROPOUT,
            "loss": "masked class-balanced BCE",
        },
        "metrics": metrics,
        "test_flag_rates_by_kind": test_kinds,
        "test_blur_by_sigma": by_sigma,
        "untransformed_test_photos": untransformed,
        "unseen_real_placeholders": {
            "family": HELD_OUT_PLACEHOLDER_FAMILY,
            "n": int(held_out.size),
            "recall": round(float((scores[held_out, 2] >= 0.5).mean()), 4),
            "originals_on_white_recall": round(
                float(np.mean([scores[i, 2] >= 0.5 for i in held_out if ds.specs[i].key.endswith(":0")])), 4
            ),
        },
        "downscaling_study": downscaling_study(ds, train_rows, head),
        "onnx_parity_max_abs_error": parity,
        "latency_cpu_onnxruntime_1_thread": latency(path),
    }
    (out_dir / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="development data root (../shared/data)")
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    parser.add_argument("--cache", type=Path, default=CACHE_DIR)
    parser.add_argument("--workers", type=int, default=2, help="processes rendering the synthetic images")
    args = parser.parse_args(argv)
    if not (args.data / "catalog" / "manifest.csv").is_file():
        print(f"no development data under {args.data}: keeping the committed quality head")
        return 2
    report = run(args.data, args.out, args.cache, args.workers)
    print(json.dumps({k: report[k] for k in ("thresholds", "metrics", "unseen_real_placeholders")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
