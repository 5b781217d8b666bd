"""Who may use a model route, and when: API keys, HAI-DEF terms, concurrency limits."""
