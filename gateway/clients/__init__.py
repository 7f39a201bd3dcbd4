"""Outbound I/O: the Triton inference client and the guarded image fetcher."""
