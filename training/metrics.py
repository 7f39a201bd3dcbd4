"""Metrics and threshold choice shared by training and evaluation: ROC-AUC, precision/recall at a threshold, recall
at a false-positive budget, the precision-first operating point (a good photo wrongly rejected costs more than a bad
one kept), and the confusion report of a classifier."""

from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Mann-Whitney ROC-AUC (ties count half); None without both classes."""
    from scipy.stats import rankdata

    positives, negatives = int(truth.sum()), int((1 - truth).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[truth == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def at_threshold(scores: np.ndarray, truth: np.ndarray, threshold: float) -> dict:
    flagged = scores >= threshold
    tp = int((flagged & (truth == 1)).sum())
    fp = int((flagged & (truth == 0)).sum())
    fn = int((~flagged & (truth == 1)).sum())
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "false_positive_rate": round(fp / int((truth == 0).sum()), 4) if (truth == 0).any() else None,
        "positives": int((truth == 1).sum()),
        "negatives": int((truth == 0).sum()),
    }


def best_f1_threshold(scores: np.ndarray, truth: np.ndarray) -> float:
    """Threshold with the best F1 (midpoint between neighbouring scores, so it does not sit on a sample)."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate([[order[0] - 1e-6], (order[1:] + order[:-1]) / 2, [order[-1] + 1e-6]])
    best, best_f1 = 0.5, -1.0
    for t in candidates:
        flagged = scores >= t
        tp = (flagged & (truth == 1)).sum()
        f1 = 2 * tp / (flagged.sum() + (truth == 1).sum())
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def precision_first_threshold(scores: np.ndarray, truth: np.ndarray, min_precision: float) -> float:
    """The threshold with the highest recall whose precision is >= `min_precision` (ties: the stricter threshold);
    a good photo wrongly rejected costs more than a bad one kept. Falls back to best F1 when nothing reaches it."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate([[order[0] - 1e-6], (order[1:] + order[:-1]) / 2, [order[-1] + 1e-6]])
    best, best_recall = None, -1.0
    positives = int((truth == 1).sum())
    for t in candidates:
        flagged = scores >= t
        tp = int((flagged & (truth == 1)).sum())
        if tp == 0 or tp / int(flagged.sum()) < min_precision:
            continue
        recall = tp / positives
        if recall > best_recall or (recall == best_recall and t > best):
            best, best_recall = float(t), recall
    return best_f1_threshold(scores, truth) if best is None else best


def metrics_where_labelled(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """ROC-AUC and the counts at `threshold` over the rows with a label (NaN = not labelled)."""
    known = ~np.isnan(labels)
    s, t = scores[known], labels[known].astype(int)
    auc = roc_auc(s, t)
    return {"roc_auc": None if auc is None else round(auc, 4), **at_threshold(s, t, threshold)}


def recall_at_fpr(scores: np.ndarray, truth: np.ndarray, fpr: float = 0.05) -> float:
    """Recall when the threshold lets `fpr` of the negatives through (the negatives' 1 - fpr quantile)."""
    threshold = np.quantile(scores[truth == 0], 1 - fpr)
    return float((scores[truth == 1] > threshold).mean())


def classification_report(names: tuple[str, ...], truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy, per-class precision / recall / support (classes never seen nor predicted left out), confusion."""
    confusion = np.zeros((len(names), len(names)), dtype=int)
    for t, p in zip(truth, predicted):
        confusion[t, p] += 1
    per_class = {}
    for i, name in enumerate(names):
        support = int(confusion[i].sum())
        if support == 0 and confusion[:, i].sum() == 0:
            continue
        precision = confusion[i, i] / confusion[:, i].sum() if confusion[:, i].sum() else None
        recall = confusion[i, i] / support if support else None
        per_class[name] = {
            "precision": None if precision is None else round(float(precision), 3),
            "recall": None if recall is None else round(float(recall), 3),
            "support": support,
        }
    return {
        "accuracy": round(float((truth == predicted).mean()), 4),
        "n": int(len(truth)),
        "per_type": per_class,  # the key the model cards' JSON has always used, for classes too
        "confusion": {"rows_truth_cols_predicted": list(names), "matrix": confusion.tolist()},
    }
