"""Kubernetes: batch/v1 Jobs (Indexed for parametric jobs)."""
