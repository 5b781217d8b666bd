"""Runnable examples with the official openai SDK, and `medgemma-ask`, the terminal client."""
