"""One module per resource; each has `register(routes)`."""

from __future__ import annotations

from types import ModuleType

from shoal.engineapi.routes import (
    containers,
    diskusage,
    exec_,
    images,
    networks,
    nodes,
    secrets_configs,
    services,
    swarm,
    system,
    tasks,
    volumes,
)

ALL_ROUTE_MODULES: tuple[ModuleType, ...] = (
    system,
    swarm,
    nodes,
    services,
    tasks,
    containers,
    exec_,
    networks,
    secrets_configs,
    images,
    volumes,
    diskusage,
)
