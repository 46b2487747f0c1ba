"""Swarm's defaults: filled into stored specs where dockerd fills them at create time, and shown by
`inspect` (insertDefaults=true) where dockerd only shows them."""

from __future__ import annotations

import copy
import random

from shoal.api import errors
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
        given = spec.get(key) or {}
        # dockerd reads an empty Order or FailureAction as the default (stop-first, pause).
        spec[key] = {**UPDATE_DEFAULTS, **{name: value for name, value in given.items()
                                           if not (name in ("Order", "FailureAction") and value == "")}}
    endpoint = spec.get("EndpointSpec")
    if endpoint is None:
        spec["EndpointSpec"] = {"Mode": "vip"}
    else:
        endpoint.setdefault("Mode", "vip")
    return shown


# -- --with-registry-auth: the client's X-Registry-Auth rides in the stored spec to every node, as
# swarmkit's ContainerSpec.PullOptions.RegistryAuth; the Engine API never shows it (moby's conversion
# to the API types has no such field). The spec schema drops a PullOptions a client sends itself.

AUTH_FROM_SPEC = "spec"
AUTH_FROM_PREVIOUS_SPEC = "previous-spec"


def _container_spec(spec: Obj | None) -> Obj | None:
    if not isinstance(spec, dict):
        return None
    task = spec.get("TaskTemplate")
    container = task.get("ContainerSpec") if isinstance(task, dict) else None
    return container if isinstance(container, dict) else None


def registry_auth_of(spec: Obj | None) -> str | None:
    """The X-Registry-Auth a stored service spec carries, if any."""
    container = _container_spec(spec)
    pull = (container or {}).get("PullOptions") or {}
    auth = pull.get("RegistryAuth") if isinstance(pull, dict) else None
    return str(auth) if auth else None


def with_registry_auth(spec: Obj, auth: str | None) -> Obj:
    """The spec carrying `auth` for its tasks' image pulls (none: no PullOptions at all)."""
    spec = copy.deepcopy(spec)
    container = _container_spec(spec)
    if container is None:
        return spec
    container.pop("PullOptions", None)
    if auth:
        container["PullOptions"] = {"RegistryAuth": auth}
    return spec


def registry_auth_for_update(current: Obj, auth: str | None, auth_from: str) -> str | None:
    """Which credentials an updated spec keeps, as dockerd's UpdateService decides: the ones sent
    with the update; else those of the current spec, or of the previous one (`--rollback`)."""
    if auth:
        return auth
    if auth_from in (AUTH_FROM_SPEC, ""):
        return registry_auth_of(current.get("Spec"))
    if auth_from == AUTH_FROM_PREVIOUS_SPEC:
        if current.get("PreviousSpec") is None:
            raise errors.Unknown("service does not have a previous spec")  # a plain error in dockerd: 500
        return registry_auth_of(current["PreviousSpec"])
    raise errors.Unknown("unsupported registryAuthFrom value")


def without_registry_auth(obj: Obj) -> Obj:
    """A service or task as the Engine API shows it: no credentials in any spec it holds."""
    shown = copy.deepcopy(obj)
    for key in ("Spec", "PreviousSpec"):
        spec = shown.get(key)
        if not isinstance(spec, dict):
            continue
        for container in (_container_spec(spec), spec.get("ContainerSpec")):  # a service's, a task's
            if isinstance(container, dict):
                container.pop("PullOptions", None)
    return shown
