"""The acknowledgement store in PostgreSQL: several gateways sharing one real throwaway server."""
