"""vLLM plugins for the engine tests only: the test profile loads them, configs/ never does."""
