"""Shared state behind small interfaces: placeholder library, vote exemplars, visual-search index."""
