"""DALI preprocessing: one pipeline definition for both Triton profiles (CPU inside a python-backend model, GPU via the DALI backend)."""
