"""deploy/: the Kubernetes manifests validated offline and kept equal to the profile they serve."""
