"""medgemma-serve: the vLLM engine launcher and the HAI-DEF-aware OpenAI-compatible gateway in front of it."""
