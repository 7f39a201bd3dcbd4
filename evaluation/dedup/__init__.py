"""Labelled near-duplicate pairs from real product photos: generate them, evaluate duplicate detectors on them, and
tune the gateway's de-duplication thresholds from them.

    python -m evaluation.dedup generate --source DIR [--manifest CSV] --out DIR [--seed 0] [--pairs N]
                                       [--category NAME]
    python -m evaluation.dedup evaluate --pairs DIR [DIR ...] [--min-precision 0.99] [--no-cnn]
    python -m evaluation.dedup tune --pairs DIR [DIR ...] [--category NAME] [--min-precision 0.99] [--write]

Pairs (label 1 = near-duplicate: the same information, both kept would be redundant; 0 = distinct, both must stay):

- positives: a real image and a transformed copy (resize, JPEG re-encode, whitespace padding, border crop,
  brightness or contrast change, PNG/WebP format change, small semi-transparent corner watermark, sometimes two of
  them, sometimes both sides transformed differently); every transformed image's recipe is kept in the pair list.
- negatives of the hard kinds. With a manifest (columns file,style,category,color,view): same style in another
  colour (`colourway`, same view first), same style and colour in another view (`view`), another style of the
  same category among the 3 nearest by a cheap colour/layout statistic (`lookalike`). Without one every image is
  its own product: look-alikes are the nearest other images by the statistic. A kind short of candidates hands its
  share to `lookalike`, then `nearest` (the 10 nearest other products whatever their category), then `other`
  (random other products). Always some synthetic ones: the same photo with its main colour recoloured
  (`recolour`) or with a small opaque shape on the product, 4-8% of the picture (`region`). Half of the real
  negatives have their second image re-exported (a mild positive recipe), so "transformed or not" is no shortcut.

The grocery dataset's `classes.csv` is understood as a manifest too (style = fine class, category = coarse class).
A pairs directory holds `pairs.csv`, `meta.json` (source, seed, counts) and `images/` (the generated files);
originals are referenced as `source/<path relative to the source folder>`.

Our hashes are computed exactly as in production: DALI preprocess (`PreprocessRunner(...).run(...)["THUMB"]`, CPU)
then `gateway.hashing.compute_hashes`. Thresholds of single-signal baselines are each method's best under the same
precision-first rule (maximise recall subject to precision >= --min-precision), chosen on the same pairs, and
also cross-validated (grouped by source image) so overfitted thresholds show.

Modules: `recipes` (transformations), `sources` (source photos, manifests), `planning` (which pairs), `generate`,
`pairset` (the pairs directory format and loader), `signatures` (ours, imagehash, CNN), `metrics` (confusion, the
precision-first rule, single thresholds, cross-validation), `tuning` (the joint three-threshold choice),
`thresholds_file` (writing the categories file), `evaluate`, `tune`, `cli`; `imagededup_baseline` runs from a side
venv.
"""
