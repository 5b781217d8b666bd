"""Benchmarks (never tests): one package per suite, each run as `python -m benchmarks.<suite>`, over benchmarks.core."""
