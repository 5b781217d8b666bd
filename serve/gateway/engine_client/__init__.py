"""The engine as the gateway sees it: the HTTP/1.1 pool, forwarding, health."""
