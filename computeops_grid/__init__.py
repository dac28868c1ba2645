"""cops-grid: run a containerized application anywhere through one interface."""

__version__ = "0.1.0"
