"""`python -m benchmarks.capacity`: the gateway's capacity on one core against LiteLLM's."""
