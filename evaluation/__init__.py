"""Accuracy evaluations and threshold tuning on labelled development data."""
