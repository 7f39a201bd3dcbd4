"""Training programs: backbone fine-tune, quality / category / type heads, data synthesis, splits, caches."""
