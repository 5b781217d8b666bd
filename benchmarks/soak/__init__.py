"""`python -m benchmarks.soak`: minutes of Poisson load, RSS and errors sampled."""
