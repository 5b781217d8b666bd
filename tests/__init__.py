"""The test suite: in-process tiers, a real-socket tier, the real-engine tier, and the benchmarks' and deploy checks."""
