"""Duplicate detection building blocks, one copy each, in memory only (no I/O):

- `rule`: the duplicate rule (pHash AND edge-dHash AND colour chi-square within the category's thresholds), the
  ImageHashes / HashVectors data types, pair verification and the per-product duplicate matrix;
- `distances`: Hamming (popcount) and chi-square;
- `bands`: multi-index hashing pieces (band keys, bucket tables, probe masks, guarantees);
- `perceptual`: pHash, dHash, edge dHash, the content box and `compute_hashes`;
- `colour`: the foreground colour histogram.
"""

from gateway.hashing.bands import HASH_BITS, guaranteed_distance, miss_probability, radius_for
from gateway.hashing.colour import HSV_HIST_BINS, HUE_BINS, SAT_BINS, TONE_BINS, colour_histogram, hsv_histogram
from gateway.hashing.distances import chi2_distance, chi2_pairs, chi2_rows, hamming, popcount64
from gateway.hashing.perceptual import compute_hashes, content_box, dhash, dhash_edge, phash
from gateway.hashing.rule import HashVectors, ImageHashes, duplicate_matrix, verify_pairs, within_thresholds

__all__ = [
    "HASH_BITS",
    "HSV_HIST_BINS",
    "HUE_BINS",
    "SAT_BINS",
    "TONE_BINS",
    "HashVectors",
    "ImageHashes",
    "chi2_distance",
    "chi2_pairs",
    "chi2_rows",
    "colour_histogram",
    "compute_hashes",
    "content_box",
    "dhash",
    "dhash_edge",
    "duplicate_matrix",
    "guaranteed_distance",
    "hamming",
    "hsv_histogram",
    "miss_probability",
    "phash",
    "popcount64",
    "radius_for",
    "verify_pairs",
    "within_thresholds",
]
