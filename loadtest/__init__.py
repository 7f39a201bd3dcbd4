"""Benchmarks and locust load tests (traffic only to the stack they start on loopback)."""
