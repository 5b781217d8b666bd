"""`python -m benchmarks.scaleout`: one topology's stack under streamed load."""
