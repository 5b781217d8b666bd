"""Serving past one engine with Ray Serve LLM: the profile's translation and the engine side of the ray topology."""
