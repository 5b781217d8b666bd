"""Does anything block the gateway's event loop? Stream ITL while another process holds the store's lock."""
