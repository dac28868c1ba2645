"""A session: the configuration, the open job store and the backends in use."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from computeops_grid.backends.base import Backend
from computeops_grid.backends.registry import get_backend
from computeops_grid.config import Config, load_config
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.store import JobStore


@dataclass
class Session:
    config: Config
    store: JobStore
    _backends: dict[str, Backend] = field(default_factory=dict)

    @classmethod
    def open(cls, config: Config | None = None) -> Session:
        config = config or load_config()
        return cls(config, JobStore(config.store_path))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backend(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = get_backend(name, self.config)
        return self._backends[name]


def by_backend(records: Iterable[JobRecord]) -> dict[str, list[JobRecord]]:
    groups: dict[str, list[JobRecord]] = defaultdict(list)
    for rec in records:
        groups[rec.backend].append(rec)
    return dict(groups)
