"""Optional Python dependencies: which extra (setup.cfg ``[options.extras_require]``) brings each.

A feature whose package is absent stops with :class:`~computeops_grid.errors.ExtraMissing`,
one line naming the feature, the package and ``pip install 'computeops-grid[EXTRA]'``, never
with "unexpected ModuleNotFoundError". Backends name their extra in their entry point
(``arc = ...:ArcBackend [grid]``); everything else is mapped from the missing module here.
``tests/install/test_extras.py`` checks this table against setup.cfg.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

from computeops_grid.errors import ExtraMissing

# top-level import name of each optional dependency -> the extra that installs it
MODULES: Mapping[str, str] = MappingProxyType(
    {
        "requests": "grid",
        "cryptography": "grid",
        "diracx": "diracx",
        "DIRACCommon": "diracx",
        "zstandard": "diracx",
        "htcondor": "htcondor",
        "htcondor2": "htcondor",
        "classad2": "htcondor",
        "docker": "cloud",
        "kubernetes": "cloud",
        "spython": "images",
        "matplotlib": "bench",
        "rocrate": "crate",
    }
)


def missing(exc: ModuleNotFoundError, feature: str, extra: str | None = None) -> ExtraMissing | None:
    """The user-facing error for ``exc`` when it is an optional dependency (else None: a bug
    or a broken installation, not a missing extra). ``extra`` overrides the table's choice
    where the feature knows better (``requests`` comes with both ``grid`` and ``diracx``)."""
    module = (exc.name or "").partition(".")[0]
    if module not in MODULES:
        return None
    return ExtraMissing(feature, module, extra or MODULES[module])


@contextmanager
def needed(feature: str, extra: str | None = None) -> Iterator[None]:
    """Imports inside this block that fail for an optional dependency raise :class:`ExtraMissing`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        error = missing(exc, feature, extra)
        if error is None:
            raise
        raise error from None
