"""Kubernetes CRI: pouchd as a kubelet container runtime."""
