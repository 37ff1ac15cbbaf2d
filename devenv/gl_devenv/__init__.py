"""Local development environment: a real Kubernetes control plane built from Go modules."""
