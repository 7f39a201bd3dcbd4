"""Train a compliance check from a folder of examples: logistic regression on the backbone's embeddings, the method
of the published system this product follows for rare concepts (weapons, offensive symbols, a brand's banned badge).

    python -m training.compliance_head --positives DIR --negatives DIR --name weapons \
        [--reason non_compliant|text_overlay] [--min-precision 0.95] [--held-out 0.3] [--out build_engines/heads]

1. Every image under both folders goes through the production preprocessing and backbone (training.embeddings), so
   the head learns on the very embedding Triton serves.
2. A stratified held-out split (`--held-out`, seeded) is kept out of training; scikit-learn's LogisticRegression
   (balanced class weights; C picked by 5-fold ROC-AUC on the training part when each class has >= 10 images) fits
   the rest.
3. The operating point is precision-first on the held-out split: the highest recall whose precision is at least
   `--min-precision` (training.metrics.precision_first_threshold; a good photo wrongly rejected costs more than a bad
   one kept). It is baked into the intercept, so the served score is 0.5 exactly there.
4. Export: ONNX of plain operators (MatMul, Add, Sigmoid: EMBEDDING [N, 1280] -> COMPLIANCE [N, 1]), checked against
   scikit-learn's own decision function. Not skl2onnx's ai.onnx.ml LinearClassifier: TensorRT, which builds the gpu
   profile's engine of the whole vision graph, has no such operator.
5. `compliance_<name>.onnx` and its model card (`.json` for tools, `.md` for people) land in `--out`; the repository
   generator splices every such head into the vision model (output COMPLIANCE_<name>), and the gateway rejects an
   image whose score reaches the category's threshold with the check's reason (categories.toml [compliance]).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from build_engines.artifacts import HEADS_DIR
from build_engines.export import OPSET
from contract.reasons import COMPLIANCE_REASONS, NON_COMPLIANT, SCORE_NAMES
from contract.tensors import COMPLIANCE_HEAD_OUTPUT, COMPLIANCE_HEAD_PREFIX, EMBEDDING, EMBEDDING_DIM
from training.metrics import at_threshold, precision_first_threshold, roc_auc

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
C_GRID = (0.1, 1.0, 10.0)
MIN_PER_CLASS_FOR_CV = 10
PARITY_TOLERANCE = 1e-4


@dataclass
class ComplianceHead:
    name: str
    reason: str
    weights: np.ndarray  # [EMBEDDING_DIM]
    bias: float  # intercept less the chosen logit threshold: the served score is sigmoid(w . x + bias)
    card: dict

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(embeddings @ self.weights + self.bias)))


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files


def check_name(name: str) -> str:
    if not name.isidentifier() or name != name.lower() or name in SCORE_NAMES:
        raise SystemExit(f"--name must be a lower-case word other than {SCORE_NAMES}, got {name!r}")
    return name


def held_out_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Stratified: `fraction` of each class (at least one image of each) is held out."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for value in (0, 1):
        rows = np.flatnonzero(labels == value)
        count = min(len(rows) - 1, max(1, round(fraction * len(rows))))
        mask[rng.permutation(rows)[:count]] = True
    return mask


def choose_c(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """C of the best mean 5-fold ROC-AUC on the training part; 1.0 when a class is too small to fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if min(int(y.sum()), int((1 - y).sum())) < MIN_PER_CLASS_FOR_CV:
        return 1.0
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = {
        c: cross_val_score(
            LogisticRegression(C=c, class_weight="balanced", max_iter=5000), x, y, cv=folds, scoring="roc_auc"
        ).mean()
        for c in C_GRID
    }
    return max(C_GRID, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation


def train(
    positives: np.ndarray,
    negatives: np.ndarray,
    name: str,
    reason: str = NON_COMPLIANT,
    min_precision: float = 0.95,
    held_out: float = 0.3,
    seed: int = 0,
) -> ComplianceHead:
    """Fit on embeddings [n, EMBEDDING_DIM] of positive and negative examples; the card holds the held-out figures."""
    from sklearn.linear_model import LogisticRegression

    if reason not in COMPLIANCE_REASONS:
        raise ValueError(f"reason must be one of {sorted(COMPLIANCE_REASONS)}, got {reason!r}")
    if len(positives) < 2 or len(negatives) < 2:
        raise ValueError(f"need at least 2 positives and 2 negatives, got {len(positives)} and {len(negatives)}")
    x = np.concatenate([positives, negatives]).astype(np.float64)
    y = np.concatenate([np.ones(len(positives), int), np.zeros(len(negatives), int)])
    test = held_out_mask(y, held_out, seed)
    c = choose_c(x[~test], y[~test], seed)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x[~test], y[~test])
    logits = model.decision_function(x[test])
    threshold = precision_first_threshold(logits, y[test], min_precision)
    head = ComplianceHead(name, reason, model.coef_[0].astype(np.float32), float(model.intercept_[0] - threshold), {})
    served = head.scores(x[test].astype(np.float32))
    auc = roc_auc(logits, y[test])
    head.card = {
        "name": name,
        "reason": reason,
        "model": f"{COMPLIANCE_HEAD_PREFIX}{name}",
        "method": "scikit-learn LogisticRegression (balanced class weights, L2) on backbone embeddings",
        "C": c,
        "operating_point": f"precision-first on the held-out split: highest recall at precision >= {min_precision}",
        "logit_threshold": round(float(threshold), 6),
        "images": {"positives": int(len(positives)), "negatives": int(len(negatives))},
        "held_out": {
            "fraction": held_out,
            "seed": seed,
            "roc_auc": None if auc is None else round(auc, 4),
            **at_threshold(served, y[test], 0.5),
        },
    }
    return head


def export_onnx(head: ComplianceHead, path: Path) -> Path:
    """EMBEDDING [N, EMBEDDING_DIM] -> COMPLIANCE [N, 1] = sigmoid(x W + b), plain operators at the backbone's opset."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(head.weights.reshape(EMBEDDING_DIM, 1).astype(np.float32), "weights")
    bias = numpy_helper.from_array(np.array([head.bias], dtype=np.float32), "bias")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [EMBEDDING.name, "weights"], ["logit"], name="matmul"),
            helper.make_node("Add", ["logit", "bias"], ["shifted"], name="add"),
            helper.make_node("Sigmoid", ["shifted"], [COMPLIANCE_HEAD_OUTPUT], name="sigmoid"),
        ],
        f"{COMPLIANCE_HEAD_PREFIX}{head.name}",
        [helper.make_tensor_value_info(EMBEDDING.name, TensorProto.FLOAT, ["N", EMBEDDING_DIM])],
        [helper.make_tensor_value_info(COMPLIANCE_HEAD_OUTPUT, TensorProto.FLOAT, ["N", 1])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="imgsel")
    model.ir_version = 8  # what onnxruntime 1.31 and TensorRT 10 read, like the backbone's export
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def onnx_scores(path: Path, embeddings: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {EMBEDDING.name: embeddings.astype(np.float32)})[0][:, 0]


def card_markdown(card: dict) -> str:
    held = card["held_out"]
    return "\n".join(
        [
            f"# Compliance check `{card['name']}`",
            "",
            f"- Reason it adds when it fires: `{card['reason']}`; vision-model output `COMPLIANCE_{card['name']}`.",
            f"- Method: {card['method']}; C = {card['C']}.",
            f"- Data: {card['images']['positives']} positive and {card['images']['negatives']} negative images "
            f"({card.get('positives_dir', '?')}, {card.get('negatives_dir', '?')}).",
            f"- Operating point: {card['operating_point']} (served score 0.5 there; logit {card['logit_threshold']}).",
            f"- Held out ({held['fraction']:.0%}, seed {held['seed']}): {held['positives']} positives, "
            f"{held['negatives']} negatives; ROC-AUC {held['roc_auc']}, precision {held['precision']}, recall "
            f"{held['recall']}, false-positive rate {held['false_positive_rate']} at score 0.5.",
            f"- Trained {card.get('trained_at', '?')} on backbone {card.get('backbone_fingerprint', '?')}; retrain "
            "after the backbone changes (its embedding moves).",
            "- Limits: a linear probe sees what the embedding sees; small held-out sets give wide error bars, so "
            "grow the check with the review loop before trusting it on a whole catalog.",
            "",
        ]
    )


def write(head: ComplianceHead, out: Path, check_embeddings: np.ndarray) -> Path:
    """The ONNX head and its card in `out`; refuses an export that disagrees with the fitted model."""
    path = export_onnx(head, out / f"{COMPLIANCE_HEAD_PREFIX}{head.name}.onnx")
    error = float(np.abs(onnx_scores(path, check_embeddings) - head.scores(check_embeddings)).max())
    if error > PARITY_TOLERANCE:
        path.unlink()
        raise RuntimeError(f"ONNX export disagrees with the fitted head by {error:.2e}")
    head.card["onnx_parity_max_error"] = error
    (out / f"{COMPLIANCE_HEAD_PREFIX}{head.name}.json").write_text(json.dumps(head.card, indent=2) + "\n")
    (out / f"{COMPLIANCE_HEAD_PREFIX}{head.name}.md").write_text(card_markdown(head.card))
    return path


def embed_folder(folder: Path) -> np.ndarray:
    from training.embeddings import embed_files

    paths = image_files(folder)
    embeddings, valid = embed_files(paths)
    if not valid.all():
        skipped = [str(paths[i]) for i in np.flatnonzero(~valid)]
        print(f"skipped {len(skipped)} undecodable images: {skipped[:5]}", file=sys.stderr)
    return embeddings[valid]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positives", type=Path, required=True, help="folder of images showing the concept")
    parser.add_argument("--negatives", type=Path, required=True, help="folder of acceptable catalog images")
    parser.add_argument("--name", required=True, help="the check's name (scores and verdicts use it)")
    parser.add_argument("--reason", default=NON_COMPLIANT, choices=sorted(COMPLIANCE_REASONS))
    parser.add_argument("--min-precision", type=float, default=0.95)
    parser.add_argument("--held-out", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    args = parser.parse_args(argv)
    from build_engines.backbone import backbone_fingerprint

    name = check_name(args.name)
    positives, negatives = embed_folder(args.positives), embed_folder(args.negatives)
    head = train(positives, negatives, name, args.reason, args.min_precision, args.held_out, args.seed)
    head.card.update(
        positives_dir=str(args.positives),
        negatives_dir=str(args.negatives),
        trained_at=time.strftime("%Y-%m-%d"),
        backbone_fingerprint=backbone_fingerprint(),
    )
    path = write(head, args.out, np.concatenate([positives, negatives]))
    print(json.dumps(head.card, indent=2))
    print(
        f"wrote {path}; `make repo` serves it as COMPLIANCE_{name}. Its rejections carry `{head.reason}`"
        + ("" if head.reason == NON_COMPLIANT else f': add `{name} = "{head.reason}"` to [compliance] reasons')
        + " (contract/categories.toml).",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
