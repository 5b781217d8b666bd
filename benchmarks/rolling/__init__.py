"""Rolling restarts of gateways behind HAProxy under streaming load: zero failed requests."""
