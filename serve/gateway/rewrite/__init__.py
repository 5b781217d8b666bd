"""What the gateway changes on the way through: request bodies, the disclaimer, images, SSE."""
