"""Duplicate detection building blocks, one copy each, in memory only (no I/O):

- `rule`: the duplicate rule (pHash AND edge-dHash AND colour chi-square within the category's thresholds), the
  ImageHashes / HashVectors data types, `compute_hashes` of a thumbnail, pair verification and the per-product
  duplicate matrix;
- `distances`: Hamming (popcount) and chi-square;
- `tone`: the tone thumbnail and the tone residual (whether two pictures differ only by a global tone change);
- `framing`: where one picture is a window of the other (a crop or pad copy), for the framing rescue;
- `bands`: multi-index hashing pieces (band keys, bucket tables, probe masks, guarantees);

The hashes themselves are computed by preprocessing.perceptual (pHash, dHash, edge dHash, the content box) and
preprocessing.colour (the foreground colour histogram), re-exported here: the cpu profile's preprocess model runs the
same code inside Triton.
"""

from gateway.hashing.bands import HASH_BITS, guaranteed_distance, miss_probability, radius_for
from gateway.hashing.distances import chi2_distance, chi2_pairs, chi2_rows, hamming, popcount64
from gateway.hashing.rule import (
    HashVectors,
    ImageHashes,
    colour_distances,
    compute_hashes,
    duplicate_matrix,
    framed_signals,
    rule_closeness,
    verify_pairs,
    within_thresholds,
)
from gateway.hashing.tone import TONE_SIDE, tone_residuals, tone_thumbnail
from preprocessing.colour import HSV_HIST_BINS, HUE_BINS, SAT_BINS, TONE_BINS, colour_histogram, hsv_histogram
from preprocessing.perceptual import content_box, dhash, dhash_edge, phash, whole_phash

__all__ = [
    "HASH_BITS",
    "HSV_HIST_BINS",
    "HUE_BINS",
    "SAT_BINS",
    "TONE_BINS",
    "TONE_SIDE",
    "HashVectors",
    "ImageHashes",
    "chi2_distance",
    "chi2_pairs",
    "chi2_rows",
    "colour_distances",
    "colour_histogram",
    "compute_hashes",
    "content_box",
    "dhash",
    "dhash_edge",
    "duplicate_matrix",
    "framed_signals",
    "guaranteed_distance",
    "hamming",
    "hsv_histogram",
    "miss_probability",
    "phash",
    "popcount64",
    "radius_for",
    "rule_closeness",
    "tone_residuals",
    "tone_thumbnail",
    "verify_pairs",
    "whole_phash",
    "within_thresholds",
]
