"""imgsel gateway: HTTP API, Triton client and the pure image-selection decision logic."""
