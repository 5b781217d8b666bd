"""`python -m benchmarks.paired`: what the gateway adds, as a paired comparison."""
