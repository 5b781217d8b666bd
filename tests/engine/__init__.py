"""Tier 3, the real stack: vLLM's CPU build on the demo checkpoint behind the gateway, and the scale-out tier."""
