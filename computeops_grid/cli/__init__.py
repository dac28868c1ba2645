"""The ``cops-grid`` command line: parse, call ``logic``, print. Nothing else."""
