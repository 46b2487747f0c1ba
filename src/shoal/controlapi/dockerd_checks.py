"""Checks dockerd makes while converting an Engine API spec for swarmkit, with its texts: they come
before swarmkit's own validation, so a bad enum value gets dockerd's message (a 400 without the
"rpc error" prefix), as `docker service create --update-order bogus` shows on Docker."""

from __future__ import annotations

from shoal.api import errors
from shoal.api.objects import Obj, dig

_RESTART_CONDITIONS = ("none", "on-failure", "any")
_FAILURE_ACTIONS = ("pause", "continue", "rollback")
_ORDERS = ("stop-first", "start-first")
_RESOLUTION_MODES = ("vip", "dnsrr")
_MOUNT_TYPES = ("bind", "volume", "tmpfs", "npipe")
ROLES = ("worker", "manager")
AVAILABILITIES = ("active", "pause", "drain")


def _refuse(message: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message)


def _go_quote(value: object) -> str:
    """Go's %q of a string."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def check_service_spec(spec: Obj) -> None:
    condition = dig(spec, "TaskTemplate", "RestartPolicy", "Condition", default="") or ""
    if condition and condition not in _RESTART_CONDITIONS:
        raise _refuse(f"invalid RestartCondition: {_go_quote(condition)}")
    for key in ("UpdateConfig", "RollbackConfig"):
        config = spec.get(key) or {}
        action = config.get("FailureAction") or ""
        if action and action not in _FAILURE_ACTIONS:
            raise _refuse(f"unrecognized update failure action {action}")
        order = config.get("Order") or ""
        if order and order not in _ORDERS:
            raise _refuse(f"unrecognized update order {order}")
    mode = dig(spec, "EndpointSpec", "Mode", default="") or ""
    if mode and mode not in _RESOLUTION_MODES:
        raise _refuse(f"invalid resolution mode: {_go_quote(mode)}")
    for mount in dig(spec, "TaskTemplate", "ContainerSpec", "Mounts", default=None) or []:
        kind = str(mount.get("Type") or "")
        if kind and kind.lower() not in _MOUNT_TYPES:
            raise _refuse(f"invalid MountType: {_go_quote(kind)}")
    modes = spec.get("Mode") or {}
    if modes.get("Global") is not None and modes.get("Replicated") is not None:
        raise _refuse("cannot specify both replicated mode and global mode")


def node_spec_values(spec: Obj) -> tuple[str, str]:
    """(role, availability) as dockerd reads them: any letter case, refused with its text otherwise.
    An absent value keeps shoal's default (the docker CLI always sends both)."""
    role = str(spec.get("Role") or "worker").lower()
    if role not in ROLES:
        raise _refuse(f"invalid Role: {_go_quote(spec.get('Role'))}")
    availability = str(spec.get("Availability") or "active").lower()
    if availability not in AVAILABILITIES:
        raise _refuse(f"invalid Availability: {_go_quote(spec.get('Availability'))}")
    return role, availability
