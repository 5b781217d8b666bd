"""Tier 2, over real loopback sockets: stream chunks arrive as sent, and the gateway's HTTP/1.1 engine client."""
