"""What the gateway reports: Prometheus metrics, per-request records, the access log."""
