"""Use cases: fetch and analyse images, call the pure decisions, read and write the stores. No rule is decided here."""
