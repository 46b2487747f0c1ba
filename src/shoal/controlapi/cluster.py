"""The cluster object (`docker swarm inspect|update`, join tokens) and the objects `swarm init` writes.

Private material (the CA key, the unlock key) lives in fields starting with "_" and never leaves
through the API: public_view() strips them. The unlock key leaves only through unlock_key() (GET
/swarm/unlockkey). As swarmkit keeps it, there is one only while autolock is on: turning autolock
off drops it, turning it on again (or rotating) makes a new one."""

from __future__ import annotations

import copy
from typing import Any

from shoal.api import errors
from shoal.api.defaults import HEARTBEAT_PERIOD, NANOS, NODE_CERT_EXPIRY
from shoal.api.objects import CLUSTER, Obj, clone, dig, version_of
from shoal.base.clock import Clock
from shoal.ca import tokens
from shoal.ca.certs import KeyPair, tls_info
from shoal.controlapi.schema import CLUSTER_SPEC, conform
from shoal.store.memory import MemoryStore, ReadView, Tx

DEFAULT_CLUSTER_SPEC: Obj = {
    "Name": "default",
    "Labels": {},
    "Orchestration": {"TaskHistoryRetentionLimit": 5},
    "Raft": {
        "SnapshotInterval": 10000, "KeepOldSnapshots": 0, "LogEntriesForSlowFollowers": 500,
        "ElectionTick": 10, "HeartbeatTick": 1,
    },
    "Dispatcher": {"HeartbeatPeriod": HEARTBEAT_PERIOD},
    "CAConfig": {"NodeCertExpiry": NODE_CERT_EXPIRY},
    "TaskDefaults": {},
    "EncryptionConfig": {"AutoLockManagers": False},
}
MIN_CERT_EXPIRY = 3600 * NANOS


def merge_spec(base: Obj, override: Any) -> Obj:
    """Zero values in a client's spec mean "keep the default", as swarmkit treats them."""
    merged = copy.deepcopy(base)
    if not isinstance(override, dict):
        return merged
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_spec(merged[key], value)
        elif value not in (None, 0, "", [], {}) or (key in ("Labels",) and value is not None):
            merged[key] = copy.deepcopy(value)
    return merged


def validate_cluster_spec(spec: Obj) -> None:
    expiry = dig(spec, "CAConfig", "NodeCertExpiry") or 0
    if expiry and expiry < MIN_CERT_EXPIRY:
        raise errors.InvalidArgument("minimum certificate expiry time is: 1h0m0s", grpc=True)
    retention = dig(spec, "Orchestration", "TaskHistoryRetentionLimit", default=5)
    if retention < 0:
        raise errors.InvalidArgument("TaskHistoryRetentionLimit cannot be negative", grpc=True)


def checked_spec(raw: Any) -> Obj:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise errors.InvalidArgument("json: cannot unmarshal into Go value of type swarm.Spec")
    spec: Obj = conform(raw, CLUSTER_SPEC, "Spec")
    return spec


def new_cluster(cluster_id: str, request: Obj, root: KeyPair) -> Obj:
    # At init zero values mean "the default": the CLI sends every field, zeros included.
    spec = merge_spec(DEFAULT_CLUSTER_SPEC, checked_spec(request.get("Spec")))
    validate_cluster_spec(spec)
    if "DefaultAddrPool" not in request:
        pool: list[str] | None = ["10.0.0.0/8"]
    else:
        pool = request.get("DefaultAddrPool") or None
    autolock = bool(request.get("AutoLockManagers") or spec["EncryptionConfig"].get("AutoLockManagers"))
    spec["EncryptionConfig"]["AutoLockManagers"] = autolock
    return {
        "ID": cluster_id,
        "Spec": spec,
        "TLSInfo": tls_info(root.cert_pem),
        "RootRotationInProgress": False,
        "DefaultAddrPool": pool,
        "SubnetSize": request.get("SubnetSize") or 24,
        "DataPathPort": request.get("DataPathPort") or 4789,
        "JoinTokens": {
            "Worker": tokens.generate_join_token(root.cert_pem),
            "Manager": tokens.generate_join_token(root.cert_pem),
        },
        "_RootCA": {"Cert": root.cert_pem.decode(), "Key": root.key_pem.decode()},
        "_UnlockKey": tokens.generate_unlock_key() if autolock else "",
    }


def autolock_key(cluster: Obj) -> str:
    """The unlock key managers must wrap their secrets under, or "" when autolock is off."""
    if not dig(cluster, "Spec", "EncryptionConfig", "AutoLockManagers"):
        return ""
    return str(cluster.get("_UnlockKey") or "")


def public_view(cluster: Obj) -> Obj:
    return {key: value for key, value in cluster.items() if not key.startswith("_")}


def the_cluster(view: ReadView) -> Obj:
    clusters = view.objects(CLUSTER)
    if not clusters:
        raise errors.NotAManager()
    return clusters[0]


class ClusterControl:
    def __init__(self, store: MemoryStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def inspect(self) -> Obj:
        return public_view(the_cluster(self._store.view()))

    def unlock_key(self) -> str:
        return autolock_key(the_cluster(self._store.view()))

    async def update(self, raw_spec: Any, version: int, rotate_worker: bool, rotate_manager: bool,
                     rotate_unlock: bool) -> None:
        if not isinstance(raw_spec, dict):
            raise errors.InvalidArgument("json: cannot unmarshal into Go value of type swarm.Spec")

        def update(tx: Tx) -> None:
            current = the_cluster(tx)
            if version != version_of(current):
                raise errors.OutOfSequence()
            # On update the client sends the whole spec it read back, so a zero is meant (e.g.
            # --task-history-limit 0); only sections it left out keep their current value.
            sent = {key: value for key, value in checked_spec(raw_spec).items() if value is not None}
            spec = {**current["Spec"], **sent}
            validate_cluster_spec(spec)
            cluster = clone(current)
            cluster["Spec"] = spec
            root_pem = cluster["_RootCA"]["Cert"].encode()
            if rotate_worker:
                cluster["JoinTokens"]["Worker"] = tokens.generate_join_token(root_pem)
            if rotate_manager:
                cluster["JoinTokens"]["Manager"] = tokens.generate_join_token(root_pem)
            if not dig(spec, "EncryptionConfig", "AutoLockManagers"):
                cluster["_UnlockKey"] = ""
            elif rotate_unlock or not cluster.get("_UnlockKey"):
                cluster["_UnlockKey"] = tokens.generate_unlock_key()
            tx.update(CLUSTER, cluster)

        await self._store.update(update)
