"""`python -m benchmarks.overload`: the concurrency cap under 4x the engine's capacity."""
