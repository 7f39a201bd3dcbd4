"""Pure decisions over plain data (no I/O), one module per concern: analysis (the data), quality (one check per
rejection reason), placeholders, ranking, duplicates, selection, category, image_types, search. Import from the
concern module."""
