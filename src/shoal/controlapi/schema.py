"""The shape of the specs clients send, checked the way Docker's Go decoder checks them: a value of the
wrong JSON type is refused with Go's message, unknown fields are dropped (Go ignores them), and fields
we do not model in detail pass through untouched (`ANY`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.api import errors


@dataclass(frozen=True)
class Kind:
    go_type: str  # named in error messages, as Go's encoding/json does


STR = Kind("string")
BOOL = Kind("bool")
INT = Kind("int64")
UINT = Kind("uint64")
FLOAT = Kind("float64")
DURATION = Kind("time.Duration")
ANY = Kind("interface {}")


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


@dataclass(frozen=True)
class Struct:
    go_name: str
    fields: dict[str, Any]


STR_MAP = MapOf(STR)

FILE_TARGET = Struct("SecretReferenceFileTarget", {"Name": STR, "UID": STR, "GID": STR, "Mode": UINT})
SECRET_REFERENCE = Struct("SecretReference", {"File": FILE_TARGET, "SecretID": STR, "SecretName": STR})
CONFIG_REFERENCE = Struct("ConfigReference", {"File": FILE_TARGET, "Runtime": ANY, "ConfigID": STR,
                                              "ConfigName": STR})
MOUNT = Struct("Mount", {
    "Type": STR, "Source": STR, "Target": STR, "ReadOnly": BOOL, "Consistency": STR,
    "BindOptions": ANY, "VolumeOptions": ANY, "TmpfsOptions": ANY,
})
NETWORK_ATTACHMENT = Struct("NetworkAttachmentConfig", {"Target": STR, "Aliases": ListOf(STR),
                                                        "DriverOpts": MapOf(STR)})
DRIVER = Struct("Driver", {"Name": STR, "Options": MapOf(STR)})
RESOURCES = Struct("Resources", {"NanoCPUs": INT, "MemoryBytes": INT, "Pids": INT, "GenericResources": ANY})
CONTAINER_SPEC = Struct("ContainerSpec", {
    "Image": STR, "Labels": STR_MAP, "Command": ListOf(STR), "Args": ListOf(STR), "Hostname": STR,
    "Env": ListOf(STR), "Dir": STR, "User": STR, "Groups": ListOf(STR),
    "Privileges": Struct("Privileges", {"CredentialSpec": ANY, "SELinuxContext": ANY}), "Init": ANY,
    "TTY": BOOL, "OpenStdin": BOOL, "ReadOnly": BOOL, "Mounts": ListOf(MOUNT), "StopSignal": STR,
    "StopGracePeriod": DURATION, "Healthcheck": ANY, "Hosts": ListOf(STR),
    "DNSConfig": Struct("DNSConfig", {"Nameservers": ListOf(STR), "Search": ListOf(STR), "Options": ListOf(STR)}),
    "Secrets": ListOf(SECRET_REFERENCE), "Configs": ListOf(CONFIG_REFERENCE), "Isolation": STR,
    "Sysctls": STR_MAP, "CapabilityAdd": ListOf(STR),
    "CapabilityDrop": ListOf(STR),
    "Ulimits": ListOf(Struct("Ulimit", {"Name": STR, "Soft": INT, "Hard": INT})),
})
RESTART_POLICY = Struct("RestartPolicy", {
    "Condition": STR, "Delay": DURATION, "MaxAttempts": UINT, "Window": DURATION,
})
PLACEMENT = Struct("Placement", {
    "Constraints": ListOf(STR),
    "Preferences": ListOf(Struct("PlacementPreference", {"Spread": Struct("SpreadOver", {"SpreadDescriptor": STR})})),
    "MaxReplicas": UINT, "Platforms": ListOf(Struct("Platform", {"Architecture": STR, "OS": STR})),
})
TASK_SPEC = Struct("TaskSpec", {
    "ContainerSpec": CONTAINER_SPEC, "PluginSpec": ANY, "NetworkAttachmentSpec": ANY,
    "Resources": Struct("ResourceRequirements", {"Limits": RESOURCES, "Reservations": RESOURCES}),
    "RestartPolicy": RESTART_POLICY, "Placement": PLACEMENT, "Networks": ListOf(NETWORK_ATTACHMENT),
    "LogDriver": DRIVER,
    "ForceUpdate": UINT, "Runtime": STR,
})
UPDATE_CONFIG = Struct("UpdateConfig", {
    "Parallelism": UINT, "Delay": DURATION, "FailureAction": STR, "Monitor": DURATION,
    "MaxFailureRatio": FLOAT, "Order": STR,
})
PORT_CONFIG = Struct("PortConfig", {
    "Name": STR, "Protocol": STR, "TargetPort": UINT, "PublishedPort": UINT, "PublishMode": STR,
})
SERVICE_SPEC = Struct("ServiceSpec", {
    "Name": STR, "Labels": STR_MAP, "TaskTemplate": TASK_SPEC,
    "Mode": Struct("ServiceMode", {
        "Replicated": Struct("ReplicatedService", {"Replicas": UINT}),
        "Global": ANY, "ReplicatedJob": ANY, "GlobalJob": ANY,
    }),
    "UpdateConfig": UPDATE_CONFIG, "RollbackConfig": UPDATE_CONFIG, "Networks": ListOf(NETWORK_ATTACHMENT),
    "EndpointSpec": Struct("EndpointSpec", {"Mode": STR, "Ports": ListOf(PORT_CONFIG)}),
})
CLUSTER_SPEC = Struct("Spec", {
    "Name": STR, "Labels": STR_MAP,
    "Orchestration": Struct("OrchestrationConfig", {"TaskHistoryRetentionLimit": INT}),
    "Raft": Struct("RaftConfig", {"SnapshotInterval": UINT, "KeepOldSnapshots": UINT,
                                  "LogEntriesForSlowFollowers": UINT, "ElectionTick": INT, "HeartbeatTick": INT}),
    "Dispatcher": Struct("DispatcherConfig", {"HeartbeatPeriod": DURATION}),
    "CAConfig": Struct("CAConfig", {"NodeCertExpiry": DURATION, "ExternalCAs": ANY, "SigningCACert": STR,
                                    "SigningCAKey": STR, "ForceRotate": UINT}),
    "TaskDefaults": Struct("TaskDefaults", {"LogDriver": ANY}),
    "EncryptionConfig": Struct("EncryptionConfig", {"AutoLockManagers": BOOL}),
})
NETWORK_CREATE = Struct("NetworkCreateRequest", {
    "Name": STR, "CheckDuplicate": BOOL, "Driver": STR, "Scope": STR, "EnableIPv6": BOOL,
    "IPAM": Struct("IPAM", {"Driver": STR, "Options": MapOf(STR), "Config": ListOf(Struct("IPAMConfig", {
        "Subnet": STR, "IPRange": STR, "Gateway": STR, "AuxiliaryAddresses": MapOf(STR)}))}),
    "Internal": BOOL, "Attachable": BOOL, "Ingress": BOOL, "ConfigOnly": BOOL, "ConfigFrom": ANY,
    "Options": MapOf(STR), "Labels": MapOf(STR),
})
NODE_SPEC = Struct("NodeSpec", {"Name": STR, "Labels": STR_MAP, "Role": STR, "Availability": STR})


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number " + str(value)
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _refuse(value: Any, path: str, go_type: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        f"json: cannot unmarshal {_json_kind(value)} into Go struct field {path} of type {go_type}"
    )


def conform(value: Any, shape: Any, path: str) -> Any:
    """Return value checked against shape, with unknown struct fields dropped. `path` names the field
    as Go does (`ServiceSpec.Mode.Replicated.Replicas`)."""
    if value is None or shape is ANY:
        return value
    if isinstance(shape, Struct):
        if not isinstance(value, dict):
            raise _refuse(value, path, shape.go_name)
        # Go matches field names case-insensitively (docker-py sends {"replicated": ...}); the
        # stored spec uses the canonical spelling.
        canonical = {name.lower(): name for name in shape.fields}
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = key if key in shape.fields else canonical.get(key.lower())
            if item is None:
                continue  # Go decodes null as the field's zero value, which its JSON then omits
            if name is not None and (name not in result or key == name):
                result[name] = conform(item, shape.fields[name], f"{path}.{name}")
        return result
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            item = shape.item
            name = item.go_name if isinstance(item, Struct) else getattr(item, "go_type", "object")
            raise _refuse(value, path, "[]" + name)
        return [conform(item, shape.item, path) for item in value]
    if isinstance(shape, MapOf):
        if not isinstance(value, dict):
            raise _refuse(value, path, "map[string]string")
        return {str(k): conform(v, shape.value, path) for k, v in value.items()}
    assert isinstance(shape, Kind)
    return _scalar(value, shape, path)


def _scalar(value: Any, kind: Kind, path: str) -> Any:
    if kind is STR:
        ok = isinstance(value, str)
    elif kind is BOOL:
        ok = isinstance(value, bool)
    elif kind is FLOAT:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
        if ok and kind is UINT and value < 0:
            ok = False
    if not ok:
        raise _refuse(value, path, kind.go_type)
    return value
