"""What the 224 px backbone input hides (the quality report's `downscaling_study`): blur-only heads on the embedding,
on the classical features, on both, and the served head, judged on large validation photos (longer side >= 1000 px):
originals vs mild blur (sigma 0.2-0.5 % of the longer side). Also the Laplacian variance measured on a working copy
taken on other working copies (OTHER_BLUR_COPIES: the antialiased 512 px copy served before issue #13, a 384 px one)
beside the served copy, and the same heads on every blur-labelled test image.
"""

from __future__ import annotations

import numpy as np

from contract.tensors import QUALITY_FEATURES
from preprocessing.pipeline import BLUR_SIDE, SERVED_BLUR_COPY, BlurCopy
from training.metrics import recall_at_fpr, roc_auc
from training.placeholder_synthesis import font_paths
from training.quality_dataset import Dataset
from training.quality_model import EMBEDDING_DROPOUT, HIDDEN, QualityHead, predict, train
from training.quality_samples import Spec, render

OTHER_BLUR_COPIES = (BlurCopy(512, "antialiased"), BlurCopy(384, "antialiased"))
STUDY_MIN_SIDE = 1000
MILDEST_RELATIVE_SIGMA = 0.003  # sigma / longer side below this: the mildest third of the mild blur
# (name, input columns, hidden units, embedding dropout) of the blur-only heads trained for the study
ABLATIONS = (
    ("embedding only (224 px backbone input), logistic", "embedding", 0, 0.0),
    ("embedding only, MLP 64", "embedding", HIDDEN, EMBEDDING_DROPOUT),
    ("features only (Laplacian variance on the served copy, box area), logistic", "features", 0, 0.0),
    ("embedding + features, MLP 64, blur only", "both", HIDDEN, EMBEDDING_DROPOUT),
)


def study_rows(ds: Dataset) -> np.ndarray:
    """Validation catalog photos >= STUDY_MIN_SIDE px: their originals and mild-blur copies."""
    return np.array(
        [
            i
            for i in range(len(ds.specs))
            if ds.specs[i].role in ("calibration", "test")
            and ds.specs[i].kind in ("original", "mild_blur")
            and ds.specs[i].group.startswith("catalog:")
            and ds.sizes[i].max() >= STUDY_MIN_SIDE
        ]
    )


def downscaling_study(ds: Dataset, train_rows: np.ndarray, shipped: QualityHead) -> dict:
    study = study_rows(ds)
    truth = (np.array([ds.specs[i].kind for i in study]) == "mild_blur").astype(int)
    relative = ds.sigma_work[study] / BLUR_SIDE  # sigma / longer side (the working copy is 512 px here)
    mildest = (truth == 0) | (relative < MILDEST_RELATIVE_SIGMA)
    test_rows = ds.rows("test")
    test_blur = test_rows[~np.isnan(ds.labels[test_rows, 0])]
    test_truth = ds.labels[test_blur, 0].astype(int)
    heads: dict[str, dict] = {}

    def describe(name: str, study_scores: np.ndarray, test_scores: np.ndarray | None) -> None:
        heads[name] = {
            "roc_auc": round(roc_auc(study_scores, truth), 4),
            "roc_auc_sigma_0.2_to_0.3_percent": round(roc_auc(study_scores[mildest], truth[mildest]), 4),
            "recall_at_5_percent_fpr": round(recall_at_fpr(study_scores, truth), 4),
            "test_all_blur_kinds_roc_auc": None if test_scores is None else round(roc_auc(test_scores, test_truth), 4),
        }

    blur_train = train_rows[~np.isnan(ds.labels[train_rows, 0])]
    for name, columns, hidden, dropout in ABLATIONS:
        head = train(
            ds.embeddings[blur_train],
            ds.features[blur_train],
            ds.labels[blur_train, :1],
            hidden,
            columns,
            dropout=dropout,
        )
        describe(name, *(predict(head, ds.embeddings[r], ds.features[r])[:, 0] for r in (study, test_blur)))
    describe(
        "shipped quality head (blur column)",
        *(predict(shipped, ds.embeddings[r], ds.features[r])[:, 0] for r in (study, test_blur)),
    )
    describe(
        f"variance of the Laplacian on the served copy ({SERVED_BLUR_COPY.label}) alone",
        -ds.features[study, 0],
        -ds.features[test_blur, 0],
    )
    for copy in OTHER_BLUR_COPIES:
        if copy != SERVED_BLUR_COPY:
            other = laplacian_on_copy([ds.specs[i] for i in study], copy)
            describe(f"variance of the Laplacian at {copy.label} alone", -other, None)
    return {
        "data": "validation catalog photos >= 1000 px (calibration + test halves; thresholds play no part): "
        "originals vs Gaussian blur sigma 0.2-0.5 % of the longer side",
        "originals": int((truth == 0).sum()),
        "mildly_blurred": int(truth.sum()),
        "of_which_sigma_0.2_to_0.3_percent": int((truth[mildest] == 1).sum()),
        "heads": heads,
    }


def blur_feature(files: list[np.ndarray], copy: BlurCopy, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(the Laplacian-variance feature, the decoded longer side) of encoded files with the blur working copy `copy`."""
    from contract.tensors import ORIG_SIZE
    from preprocessing.runner import PreprocessRunner

    runner = PreprocessRunner(max_batch=batch_size, blur_copy=copy)
    feature, longer = [], []
    for start in range(0, len(files), batch_size):
        out = runner.run(files[start : start + batch_size])
        feature.append(out[QUALITY_FEATURES.name][:, 0])
        longer.append(out[ORIG_SIZE.name].max(axis=1))
    return np.concatenate(feature), np.concatenate(longer)


def laplacian_on_copy(specs: list[Spec], copy: BlurCopy) -> np.ndarray:
    """The Laplacian-variance feature of the given samples (rendered again) with the blur working copy `copy`."""
    fonts = font_paths()
    return blur_feature([render(s, fonts)[0] for s in specs], copy)[0]
