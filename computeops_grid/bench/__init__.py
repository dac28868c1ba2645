"""Measured comparisons that the tool runs itself: container runtimes and orchestrators.

The C sources of the study's workloads (``kernel.c``, ``gpu.c``) are package data, read
through ``importlib.resources``; the plots of a report need the ``bench`` extra (matplotlib).
"""
