"""pouchd's Kubernetes CRI face (runtime.v1): RuntimeService and ImageService over the managers."""
