"""`python -m benchmarks.loadtest` / `medgemma-bench`: load-test OpenAI-compatible targets."""
