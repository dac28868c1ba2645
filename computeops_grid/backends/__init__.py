"""Backends: one module per place a job can run, registered by entry point."""
