"""Find backends by name through the ``computeops_grid.backends`` entry points.

Built-in backends are registered exactly like third-party plugins (setup.cfg).
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from pydantic import ValidationError

from computeops_grid import extras, worker
from computeops_grid.backends.base import Backend, BackendContext, undeclared_abilities
from computeops_grid.config import Config
from computeops_grid.errors import ConfigError, UnknownBackend

GROUP = "computeops_grid.backends"
log = logging.getLogger(__name__)


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def known_backends() -> list[str]:
    return sorted(_entry_points())


def backend_class(name: str) -> type[Backend]:
    eps = _entry_points()
    if name not in eps:
        raise UnknownBackend(
            f"no backend named {name!r}; known: {', '.join(sorted(eps)) or 'none'}",
            hint="a third-party backend registers the entry point group "
            f"{GROUP!r}; install its package (or `pip install -e .` after adding one)",
        )
    entry = eps[name]
    try:
        return cast("type[Backend]", entry.load())
    except ModuleNotFoundError as exc:  # an extra not installed: say which (setup.cfg `name = ... [extra]`)
        absent = extras.missing(exc, f"backend {name!r}", next(iter(entry.extras), None))
        if absent is not None:
            raise absent from None
        raise UnknownBackend(f"backend {name!r} failed to load: {exc}") from exc
    except Exception as exc:  # a broken plugin must not take the CLI down
        raise UnknownBackend(f"backend {name!r} failed to load: {exc}") from exc


def context(config: Config) -> BackendContext:
    return BackendContext(
        home=config.home, jobs_dir=config.jobs_dir, image_root=config.images, pilot=worker.pilot()
    )


def get_backend(name: str, config: Config) -> Backend:
    """An instance for resource ``name`` (a named resource, or a backend type with its
    defaults), with its settings from the configuration."""
    resource = config.resource(name)
    try:
        cls = backend_class(resource.type)
    except UnknownBackend:
        if resource.name != resource.type or not config.resources:
            raise
        raise UnknownBackend(
            f"no resource or backend type named {name!r}; resources: {', '.join(sorted(config.resources))};"
            f" types: {', '.join(known_backends())}",
            hint="`cops-grid backends` lists them; resources are defined under `resources:`",
        ) from None
    try:
        settings = cls.Settings.model_validate(resource.settings)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in (resource.where, *err["loc"]))
        raise ConfigError(f"{config.source}: {field}: {err['msg']}") from None
    backend = cls(settings, context(config))  # type: ignore[call-arg]
    problems = undeclared_abilities(backend, cls.capabilities)
    if problems:
        raise UnknownBackend(
            f"backend {name!r} is inconsistent: {'; '.join(problems)}",
            hint="a backend declares a capability exactly when it implements its protocol (backends/base.py)",
        )
    return backend
