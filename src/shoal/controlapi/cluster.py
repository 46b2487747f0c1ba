"""The cluster object (`docker swarm inspect|update`, join tokens) and the objects `swarm init` writes.

Private material (the CA key, the unlock key) lives in fields starting with "_" and never leaves
through the API: public_view() strips them. The unlock key leaves only through unlock_key() (GET
/swarm/unlockkey). As swarmkit keeps it, there is one only while autolock is on: turning autolock
off drops it, turning it on again (or rotating) makes a new one.

The CA's state lives in "_RootCA": the root and its key, the root rotation under way (RootRotation:
the new root, its key and its cross-signed certificate) and the ForceRotate value last acted on.
`docker swarm ca --rotate` is a cluster update (a changed ForceRotate, or SigningCACert/Key, which are
taken into "_RootCA" and never kept in the spec). Each node object carries "_DesiredTLS", the issuer
and trust root it should have: a node that sees it differ from its own renews (or fetches the new
root), then reports its TLSInfo; the report that leaves no node on the old issuer ends the rotation.

SHOAL_TEST_MIN_CERT_EXPIRY (seconds) lowers the 1 h minimum of CAConfig.NodeCertExpiry. It exists for
tests only, to watch renewals happen in seconds; never set it on a real swarm."""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from typing import Any

from shoal.api import errors
from shoal.api.defaults import HEARTBEAT_PERIOD, NANOS, NODE_CERT_EXPIRY
from shoal.api.objects import CLUSTER, NODES, Obj, clone, dig, version_of
from shoal.base.clock import Clock
from shoal.ca import rotation, tokens
from shoal.ca.certs import KeyPair
from shoal.ca.rotation import CAState, RootRotation
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
TEST_MIN_CERT_EXPIRY_ENV = "SHOAL_TEST_MIN_CERT_EXPIRY"
DESIRED_TLS = "_DesiredTLS"  # on node objects: {"Issuer": public key (base64 DER), "Root": root digest}


def min_cert_expiry() -> int:
    """The shortest NodeCertExpiry accepted, in nanoseconds (Swarm's 1 h, unless a test lowered it)."""
    override = os.environ.get(TEST_MIN_CERT_EXPIRY_ENV)
    return int(float(override) * NANOS) if override else MIN_CERT_EXPIRY


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
    if expiry and expiry < min_cert_expiry():
        shortest = "1h0m0s" if min_cert_expiry() == MIN_CERT_EXPIRY else f"{min_cert_expiry() / NANOS:g}s"
        raise errors.InvalidArgument(f"minimum certificate expiry time is: {shortest}", grpc=True)
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
    spec["CAConfig"].pop("SigningCACert", None)  # an external root at init is not supported: not kept
    spec["CAConfig"].pop("SigningCAKey", None)
    state = CAState(root, None, int(spec["CAConfig"].get("ForceRotate") or 0))
    return {
        "ID": cluster_id,
        "Spec": spec,
        "TLSInfo": state.tls_info(),
        "RootRotationInProgress": False,
        "DefaultAddrPool": pool,
        "SubnetSize": request.get("SubnetSize") or 24,
        "DataPathPort": request.get("DataPathPort") or 4789,
        "JoinTokens": {
            "Worker": tokens.generate_join_token(root.cert_pem),
            "Manager": tokens.generate_join_token(root.cert_pem),
        },
        "_RootCA": _root_ca_fields(state),
        "_UnlockKey": tokens.generate_unlock_key() if autolock else "",
    }


# -- the CA's state in the cluster object


def _root_ca_fields(state: CAState) -> Obj:
    rotation_fields = None if state.rotation is None else {
        "CACert": state.rotation.ca_cert.decode(), "CAKey": state.rotation.ca_key.decode(),
        "CrossSignedCACert": state.rotation.cross_signed.decode(),
    }
    return {"Cert": state.root.cert_pem.decode(), "Key": state.root.key_pem.decode(),
            "RootRotation": rotation_fields, "LastForcedRotation": state.last_forced}


def ca_state(cluster: Obj) -> CAState:
    fields = cluster["_RootCA"]
    found = fields.get("RootRotation")
    rotation_state = None if not found else RootRotation(
        found["CACert"].encode(), found["CAKey"].encode(), found["CrossSignedCACert"].encode())
    return CAState(KeyPair(fields["Cert"].encode(), fields["Key"].encode()), rotation_state,
                   int(fields.get("LastForcedRotation") or 0))


def node_cert_lifetime(cluster: Obj) -> timedelta:
    """CAConfig.NodeCertExpiry: the life of the certificates the CA issues now."""
    nanos = dig(cluster, "Spec", "CAConfig", "NodeCertExpiry") or NODE_CERT_EXPIRY
    return timedelta(microseconds=nanos // 1000)


def desired_tls(cluster: Obj) -> Obj:
    """What every node's certificate and trust should be now (the node-object marker)."""
    info = cluster["TLSInfo"]
    return {"Issuer": info["CertIssuerPublicKey"], "Root": tokens.ca_digest(info["TrustRoot"].encode())}


def _set_ca_state(tx: Tx, cluster: Obj, state: CAState) -> None:
    """Write ``state`` into ``cluster`` (a clone the caller stores) and, if the issuer or the trust
    root changed, tell every node through its marker."""
    before = desired_tls(cluster)
    cluster["_RootCA"] = _root_ca_fields(state)
    cluster["TLSInfo"] = state.tls_info()
    cluster["RootRotationInProgress"] = state.rotation is not None
    desired = desired_tls(cluster)
    if desired == before:
        return
    for current in tx.objects(NODES):
        if current.get(DESIRED_TLS) != desired:
            node = clone(current)
            node[DESIRED_TLS] = desired
            tx.update(NODES, node)


def _converged(tx: Tx, cluster: Obj) -> bool:
    """Whether every node reports a certificate from the issuer the cluster wants."""
    wanted = cluster["TLSInfo"]
    keys = ("CertIssuerSubject", "CertIssuerPublicKey")
    return all(
        all(dig(node, "Description", "TLSInfo", key) == wanted[key] for key in keys) for node in tx.objects(NODES)
    )


def record_node_tls_info(tx: Tx, node_id: str, info: dict[str, str]) -> None:
    """A node installed a certificate or trust root: keep its TLSInfo and, if that was the last node
    a root rotation waited for, finish the rotation (the new root becomes the only one, and the join
    tokens are made again for it, as swarmkit does)."""
    current = tx.get(NODES, node_id)
    if current is None:
        raise errors.NotFound(f"node {node_id} not found", grpc=True)
    if dig(current, "Description", "TLSInfo") != info:
        node = clone(current)
        node["Description"] = {**(node.get("Description") or {}), "TLSInfo": info}
        tx.update(NODES, node)
    finish_rotation_if_converged(tx)


def finish_rotation_if_converged(tx: Tx) -> None:
    """End the root rotation under way if no node is left on the old issuer (called when a node
    reports its TLSInfo, and when a node is removed: it may have been the last one waited for)."""
    cluster = the_cluster(tx)
    state = ca_state(cluster)
    if state.rotation is None or not _converged(tx, cluster):
        return
    finished = clone(cluster)
    _set_ca_state(tx, finished, state.finished())
    root_pem = finished["_RootCA"]["Cert"].encode()
    finished["JoinTokens"] = {"Worker": tokens.generate_join_token(root_pem),
                              "Manager": tokens.generate_join_token(root_pem)}
    tx.update(CLUSTER, finished)


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
        # On update the client sends the whole spec it read back, so a zero is meant (e.g.
        # --task-history-limit 0); only sections it left out keep their current value.
        sent = {key: value for key, value in checked_spec(raw_spec).items() if value is not None}
        before = the_cluster(self._store.view())
        if version != version_of(before):
            raise errors.OutOfSequence()
        spec = {**before["Spec"], **sent}
        validate_cluster_spec(spec)
        ca_config = dict(spec.get("CAConfig") or {})
        signing_cert = str(ca_config.pop("SigningCACert", None) or "")
        signing_key = str(ca_config.pop("SigningCAKey", None) or "")
        spec["CAConfig"] = ca_config  # the desired root's key is secret: it goes to "_RootCA" only
        # A new root (key generation, cross-signing) is made before the transaction, from the
        # version the caller read; the transaction refuses it if the cluster changed meanwhile.
        state = ca_state(before)
        wanted = rotation.reconcile(state, signing_cert, signing_key, int(ca_config.get("ForceRotate") or 0),
                                    self._clock.now())

        def update(tx: Tx) -> None:
            current = the_cluster(tx)
            if version != version_of(current):
                raise errors.OutOfSequence()
            cluster = clone(current)
            cluster["Spec"] = spec
            if wanted != state:
                _set_ca_state(tx, cluster, wanted)
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
