"""Deployment files generated from the topology: Kubernetes, Docker Compose, supervisor."""
