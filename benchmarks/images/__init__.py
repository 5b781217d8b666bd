"""`python -m benchmarks.images`: image ingestion through the gateway, and its figures."""
