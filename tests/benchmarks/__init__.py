"""The benchmarks' own arithmetic on synthetic data and short runs against the fake engines (no timing asserts)."""
