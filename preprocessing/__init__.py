"""DALI preprocessing: one pipeline definition for both Triton profiles.

CPU inside a python-backend model (embedded profile); GPU with nvJPEG decoding (production profile).
"""
