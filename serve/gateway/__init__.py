"""The gateway on the one public port: routes, admission, rewrites, the engine client, stores, telemetry."""
