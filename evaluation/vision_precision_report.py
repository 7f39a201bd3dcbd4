"""The side-by-side report of evaluation.vision_precision: the rows (metric, where it sits in each precision's report
and in the committed heads/*.json, fp32 and int8 values), their delta in percentage points, the markdown table, and
the agreement summaries of two models' outputs. Pure: plain data in, plain data out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.tensors import EMBEDDING, QUALITY_OUTPUTS, QUALITY_SCORES

MAX_DELTA_POINTS = 0.5  # the rule: int8 stays the cpu default only if no card metric moves more
FLAGGED = 0.5  # every served quality score is 0.5 at its head's threshold
TYPE_CATEGORY = "apparel"  # the one category with a trained type head and labelled data


@dataclass(frozen=True)
class Row:
    metric: str
    path: tuple[str, ...]  # where the value sits in each precision's report (and in the committed heads/*.json)
    fp32: float | None
    int8: float | None
    on_card: bool = True  # MODELS.md quotes it (the rule is about these)

    @property
    def delta(self) -> float | None:
        return delta_points(self.fp32, self.int8)


def delta_points(fp32: float | None, int8: float | None) -> float | None:
    """int8 - fp32 in percentage points of a [0, 1] metric (None when either is missing)."""
    if fp32 is None or int8 is None:
        return None
    return round((int8 - fp32) * 100, 2)


def pick(report: dict, path: tuple[str, ...]):
    """The value at `path` in nested dicts (and lists, by index), None where a key is missing."""
    for key in path:
        if isinstance(report, dict) and key in report:
            report = report[key]
        elif isinstance(report, list) and isinstance(key, int) and 0 <= key < len(report):
            report = report[key]
        else:
            return None
    return report


def rows_at(reports: dict[str, dict], specs: Iterable[tuple[str, tuple, bool]]) -> list[Row]:
    """One row per (label, path, on_card) spec, its values read from the fp32 and int8 reports."""
    return [
        Row(label, path, pick(reports["fp32"], path), pick(reports["int8"], path), on_card)
        for label, path, on_card in specs
    ]


def moved_beyond(rows: list[Row], limit: float = MAX_DELTA_POINTS) -> list[Row]:
    return [r for r in rows if r.delta is not None and abs(r.delta) > limit]


def markdown_table(rows: list[Row]) -> str:
    def cell(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = ["| metric | fp32 | int8 | delta (points) |", "| --- | --- | --- | --- |"]
    for r in rows:
        delta = "-" if r.delta is None else f"{r.delta:+.2f}"
        lines.append(f"| {r.metric} | {cell(r.fp32)} | {cell(r.int8)} | {delta} |")
    return "\n".join(lines)


def cosine_summary(a: np.ndarray, b: np.ndarray) -> dict:
    """Row-wise cosine similarity of two embedding matrices: min, 1st percentile, median, mean."""
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {
        "n": int(len(cosine)),
        "min": round(float(cosine.min()), 5),
        "p1": round(float(np.percentile(cosine, 1)), 5),
        "p50": round(float(np.median(cosine)), 5),
        "mean": round(float(cosine.mean()), 5),
    }


def top1_agreement(fp32: np.ndarray, int8: np.ndarray) -> dict:
    """Share of images whose arg-max class is the same under both models."""
    same = fp32.argmax(axis=1) == int8.argmax(axis=1)
    return {"n": int(len(same)), "agreement": round(float(same.mean()), 4), "differ": int((~same).sum())}


def flag_agreement(fp32: np.ndarray, int8: np.ndarray, threshold: float = FLAGGED) -> dict:
    """Per quality output: share of images both models flag (score >= threshold) or both keep."""
    out = {}
    for j, name in enumerate(QUALITY_OUTPUTS):
        same = (fp32[:, j] >= threshold) == (int8[:, j] >= threshold)
        out[name] = {"n": int(len(same)), "agreement": round(float(same.mean()), 4), "differ": int((~same).sum())}
    return out


STATS = (("roc_auc", "ROC-AUC"), ("precision", "precision"), ("recall", "recall"), ("false_positive_rate", "FPR"))
CARD_FLOORS = (0.5, 0.6, 0.7, 0.8)  # the confidence floors MODELS.md quotes
Spec = tuple[str, tuple, bool]  # label, path in the reports, whether MODELS.md quotes the metric


def quality_specs(report: dict) -> Iterator[Spec]:
    for role in ("test", "calibration"):  # the card quotes the test half; calibration chose the thresholds
        for head in QUALITY_OUTPUTS:
            counts = pick(report, ("quality", "metrics", role, head))
            if not counts or not counts["positives"]:
                continue
            n = f"{role}, {counts['positives']} pos / {counts['negatives']} neg"
            for stat, name in STATS:
                yield f"quality {head} {name} ({n})", ("quality", "metrics", role, head, stat), role == "test"
    untransformed = ("quality", "untransformed_test_photos")
    for part in ("catalog_and_grocery_iconic", "grocery_in_store"):
        n = pick(report, (*untransformed, part, "n"))
        label = f"quality: untransformed {part.replace('_', ' ')} test photos flagged by any head ({n})"
        yield label, (*untransformed, part, "flagged_any"), True
    n = pick(report, ("quality", "unseen_real_placeholders", "n"))
    yield (
        f"quality placeholder recall, unseen real family ({n})",
        ("quality", "unseen_real_placeholders", "recall"),
        True,
    )


def category_specs(report: dict) -> Iterator[Spec]:
    validation = ("category", "validation")
    n = pick(report, (*validation, "images", "n"))
    yield f"category accuracy (validation, {n} images)", (*validation, "images", "accuracy"), True
    yield f"category routing accuracy ({n} images)", (*validation, "routing_accuracy"), True
    for cls, counts in (pick(report, (*validation, "images", "per_type")) or {}).items():
        for stat in ("precision", "recall"):
            path = (*validation, "images", "per_type", cls, stat)
            yield f"category {cls} {stat} ({counts['support']} images)", path, True
    for source in ("validation", "validation_catalog", "validation_grocery"):
        requests = ("category", source, "requests")
        n = pick(report, (*requests, "n"))
        for stat in (
            "accuracy",
            "routing_accuracy",
            "predicted_at_min_confidence_0.6",
            "routing_accuracy_of_predicted",
        ):
            on_card = source == "validation" or stat == "accuracy"
            yield f"category requests {stat.replace('_', ' ')} ({source}, {n})", (*requests, stat), on_card
    for index, point in enumerate(pick(report, (*validation, "confidence_floor")) or []):
        floor = point["min_confidence"]
        for stat in ("kept", "accuracy_kept"):
            path = (*validation, "confidence_floor", index, stat)
            yield f"category {stat.replace('_', ' ')} at confidence {floor}", path, floor in CARD_FLOORS
    n = pick(report, ("category", "out_of_distribution", "images"))
    label = f"category: real placeholders trusted at the floor ({n}; lower is better)"
    yield label, ("category", "out_of_distribution", "trusted_share"), True


def type_specs(report: dict) -> Iterator[Spec]:
    head = f"type_{TYPE_CATEGORY}"
    n = pick(report, (head, "validation", "n"))
    yield f"{head} accuracy, all types (validation, {n} images)", (head, "validation", "accuracy"), True
    learned = pick(report, (head, "validation_learned_types_only", "n"))
    yield (
        f"{head} accuracy, learned types ({learned} images)",
        (head, "validation_learned_types_only", "accuracy"),
        True,
    )
    for name, counts in (pick(report, (head, "validation", "per_type")) or {}).items():
        for stat in ("precision", "recall"):
            path = (head, "validation", "per_type", name, stat)
            yield f"{head} {name} {stat} ({counts['support']} images)", path, True
    products = pick(report, (head, "hero", "products_with_front"))
    yield f"{head} hero is a true front ({products} products)", (head, "hero", "rate"), True


def table_rows(reports: dict[str, dict]) -> list[Row]:
    fp32 = reports["fp32"]
    return rows_at(reports, [*quality_specs(fp32), *category_specs(fp32), *type_specs(fp32)])


def committed_reports(heads_dir: Path) -> dict:
    names = {
        "quality": "quality.json",
        "category": "category.json",
        f"type_{TYPE_CATEGORY}": f"type_{TYPE_CATEGORY}.json",
    }
    return {
        key: json.loads((heads_dir / name).read_text()) for key, name in names.items() if (heads_dir / name).is_file()
    }


def compare_with_committed(rows: list[Row], committed: dict) -> dict:
    """The fp32 model against the committed cards (the heads were trained and reported on torch embeddings of the
    same images; the fp32 ONNX path should reproduce them): how many rows both have, and those that differ."""
    compared, differ = 0, []
    for r in rows:
        card = pick(committed, r.path)
        if card is None or r.fp32 is None:
            continue
        compared += 1
        if abs(card - r.fp32) > 1e-4:
            differ.append({"metric": r.metric, "committed": card, "fp32": r.fp32})
    return {"compared": compared, "differ": differ}


# ---------------------------------------------------------------------------------------------- agreement, summary


def output_agreement(fp32: dict[str, np.ndarray], int8: dict[str, np.ndarray]) -> dict:
    """Two models' outputs on the same images: the embeddings' cosine, the quality flags' agreement and largest score
    difference, every other head's top-1 agreement."""
    heads = sorted(name for name in fp32 if name not in (EMBEDDING.name, QUALITY_SCORES.name))
    return {
        "embedding_cosine": cosine_summary(fp32[EMBEDDING.name], int8[EMBEDDING.name]),
        "quality_flags": flag_agreement(fp32[QUALITY_SCORES.name], int8[QUALITY_SCORES.name]),
        "quality_max_abs_difference": round(
            float(np.abs(fp32[QUALITY_SCORES.name] - int8[QUALITY_SCORES.name]).max()), 4
        ),
        "top1": {name: top1_agreement(fp32[name], int8[name]) for name in heads},
    }


def side_tables(agreement: dict, speed: dict) -> str:
    """Markdown: the embeddings' cosine, each head's agreement, each model file's speed."""
    cosine = agreement["embedding_cosine"]
    lines = [
        f"Embedding cosine(int8, fp32) over {cosine['n']} images: min {cosine['min']}, p1 {cosine['p1']}, "
        f"p50 {cosine['p50']}, mean {cosine['mean']}.",
        "",
        "| head | agreement | images that differ |",
        "| --- | --- | --- |",
    ]
    for name, value in agreement["quality_flags"].items():
        lines.append(
            f"| quality `{name}` flag (score >= {FLAGGED}) | {value['agreement']:.4f} | {value['differ']} of "
            f"{value['n']} |"
        )
    for name, value in agreement["top1"].items():
        lines.append(f"| `{name}` top-1, every image | {value['agreement']:.4f} | {value['differ']} of {value['n']} |")
    for name, value in agreement.get("top1_on_own_validation", {}).items():
        lines.append(
            f"| `{name}` top-1, its validation images | {value['agreement']:.4f} | {value['differ']} of {value['n']} |"
        )
    batches = [key for key in next(iter(speed.values())) if key.startswith("batch_")]
    lines += ["", "| model file | MB | " + " | ".join(f"batch {b.split('_')[1]}, images/s" for b in batches) + " |"]
    lines.append("| --- " * (len(batches) + 2) + "|")
    for precision, value in speed.items():
        lines.append(
            f"| vision {precision} | {value['file_mb']} | " + " | ".join(str(value[b]) for b in batches) + " |"
        )
    return "\n".join(lines)


def verdict(rows: list[Row], limit: float = MAX_DELTA_POINTS) -> str:
    """The issue's rule (no MODELS.md metric moves by more than `limit` points), then the other metrics that did."""
    lines = []
    for on_card, what in ((True, "MODELS.md metric"), (False, "other reported metric")):
        moved = moved_beyond([r for r in rows if r.on_card == on_card], limit)
        listed = "".join(f"\n- {r.metric}: {r.fp32:.4f} -> {r.int8:.4f} ({r.delta:+.2f})" for r in moved)
        lines.append(f"{len(moved)} {what}(s) moved by more than {limit} points{':' if moved else '.'}{listed}")
    return "\n".join(lines)


def reproduction_note(comparison: dict) -> str:
    """One line from compare_with_committed's result."""
    differ = comparison["differ"]
    note = f"fp32 equals the committed heads/*.json in {comparison['compared'] - len(differ)} of "
    note += f"{comparison['compared']} comparable rows"
    return note + "".join(f"; {d['metric']}: {d['committed']} -> {d['fp32']}" for d in differ)
