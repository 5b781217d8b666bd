"""Tier 1, the gateway in process (create_app()) against the scripted fake engine: route by route."""
