"""DIRAC: DiracX over HTTPS (``diracx``), legacy DIRAC through ``dirac-wms-*`` (``legacy``),
their shared JDL, and the DiracX job agent that runs waiting jobs on a worker (``agent``).

Nothing is imported here: the legacy backend must not pull in DiracX's dependencies."""
