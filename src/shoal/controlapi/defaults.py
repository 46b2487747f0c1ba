"""Swarm's defaults: filled into stored specs where dockerd fills them at create time, and shown by
`inspect` (insertDefaults=true) where dockerd only shows them."""

from __future__ import annotations

import copy
import random

from shoal.api.defaults import RESTART_DEFAULTS, STOP_GRACE_PERIOD, UPDATE_DEFAULTS
from shoal.api.objects import Obj

_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
               "nifty", "proud", "quirky", "sharp", "tender", "vibrant", "witty", "zealous")
_NAMES = ("albattani", "bell", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "jennings",
          "kepler", "lovelace", "mccarthy", "noether", "pascal", "ritchie", "shannon", "turing", "wing")


def random_service_name() -> str:
    """As dockerd does for a service created without a name."""
    return f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}"


def normalize_new_spec(spec: Obj) -> Obj:
    """What dockerd adds when it stores a spec: a name if none, replicated mode with one replica if
    no mode, the container runtime and isolation, and top-level Networks moved into the task."""
    spec = copy.deepcopy(spec)
    if not spec.get("Name"):
        spec["Name"] = random_service_name()
    mode = spec.get("Mode") or {}
    if not any(mode.get(k) is not None for k in ("Replicated", "Global", "ReplicatedJob", "GlobalJob")):
        mode = {"Replicated": {"Replicas": 1}}
    if "Replicated" in mode and mode["Replicated"] is not None and mode["Replicated"].get("Replicas") is None:
        mode["Replicated"]["Replicas"] = 1
    spec["Mode"] = mode
    if not isinstance(spec.get("TaskTemplate"), dict):
        spec["TaskTemplate"] = {}
    task = spec["TaskTemplate"]
    container = task.get("ContainerSpec")
    if container is not None:
        container.setdefault("Isolation", "default")
    task.setdefault("Runtime", "container")
    task.setdefault("ForceUpdate", 0)
    networks = spec.pop("Networks", None)
    if networks and not task.get("Networks"):
        task["Networks"] = networks
    return spec


def with_defaults(service: Obj) -> Obj:
    """A copy of the service with Swarm's defaults shown (GET /services/{id}?insertDefaults=true)."""
    shown = copy.deepcopy(service)
    spec = shown.setdefault("Spec", {})
    task = spec.setdefault("TaskTemplate", {})
    container = task.get("ContainerSpec")
    if container is not None:
        container.setdefault("StopGracePeriod", STOP_GRACE_PERIOD)
    policy = task.get("RestartPolicy") or {}
    task["RestartPolicy"] = {**RESTART_DEFAULTS, **policy}
    for key in ("UpdateConfig", "RollbackConfig"):
        spec[key] = {**UPDATE_DEFAULTS, **(spec.get(key) or {})}
    endpoint = spec.get("EndpointSpec")
    if endpoint is None:
        spec["EndpointSpec"] = {"Mode": "vip"}
    else:
        endpoint.setdefault("Mode", "vip")
    return shown
