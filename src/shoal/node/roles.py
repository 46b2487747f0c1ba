"""The node's certificate over its life (swarmkit's node.go and ca/renewer.go).

Renewal (``CertificateKeeper``, one per node, running for the node's life): at a random point
between 50 % and 80 % of the certificate's validity, at once when its node object's "_DesiredTLS"
names another issuer (a root rotation began), with backoff on failure. The new certificate, key and
trust root are written, every TLS context built from them switches to them for new connections
(rpc.tls.reload: sessions stay up), and the node reports its TLSInfo to the CA. When a rotation
finishes, the marker names the new root: the node fetches it over its mutual TLS and trusts only it.

`docker node promote` and `demote` as the node itself carries them out (superviseManager): the
managers change the node's desired role in its node object; the node sees it in its dispatcher
session, renews its certificate (the CA signs the role the store holds now), and starts or stops its
manager half.

- Promotion: a manager certificate, fresh raft data keys, a Raft member id of its own; the manager
  starts listening, asks the leader to add it, and follows the log.
- Demotion: the leader has already taken the node out of the Raft group (see
  node.manager.Manager._reconcile_roles); the node gets a worker certificate, stops its manager and
  deletes its Raft log, which belongs to a group it is no longer in.
- Removal while away (demoted, then `node rm`, while cut off): the managers refuse the node from then
  on, so it never sees the role change; the refusal itself makes it stop its manager half.

The agent's session, its tasks and the routing mesh are untouched throughout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING

from shoal.api import errors
from shoal.api.objects import Obj
from shoal.ca import certs, renewer, tokens
from shoal.ca import join as ca_join
from shoal.controlapi.cluster import DESIRED_TLS
from shoal.manager.membership import join_raft, new_raft_id
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.node import identity as ident
from shoal.node.addresses import split
from shoal.node.manager import ClusterTLS
from shoal.rpc import tls
from shoal.rpc.client import RpcClient

if TYPE_CHECKING:
    from shoal.node.node import Node, Swarm

log = logging.getLogger(__name__)
CERT_ROLE = {"manager": certs.ROLE_MANAGER, "worker": certs.ROLE_WORKER}
JOIN_POLL = 0.2


def _ca_address(swarm: Swarm) -> str:
    return swarm.dispatcher.leader or swarm.dispatcher.managers[0]


async def _renew(swarm: Swarm, desired: str) -> ca_join.Credentials:
    address = _ca_address(swarm)
    credentials = await ca_join.renew(swarm.client, address)
    if credentials.role != CERT_ROLE[desired]:
        raise errors.Unavailable(f"the CA still signs role {credentials.role}; waiting for {desired}")
    return credentials


async def change_role(node: Node, swarm: Swarm, desired: str) -> None:
    credentials = await _renew(swarm, desired)
    if desired == "manager":
        await _promote(node, swarm, credentials)
    else:
        await _demote(node, swarm, credentials)
    # From now on the node presents its new certificate (the old one would still say the old role).
    old, swarm.client = swarm.client, RpcClient(ClusterTLS.under(node.config.swarm_dir, None).client())
    swarm.dispatcher.set_client(swarm.client)
    await old.close()
    ident.save_identity(node.config.swarm_dir, swarm.identity)
    keeper_of(node).wake()  # the new certificate has its own renewal time
    log.info("this node is now a %s", desired)


async def _promote(node: Node, swarm: Swarm, credentials: ca_join.Credentials) -> None:
    swarm_dir = node.config.swarm_dir
    secrets = ident.NodeSecrets(credentials.key_pem, KeyRing(DataKey.generate()))
    shutil.rmtree(ident.raft_dir(swarm_dir), ignore_errors=True)  # nothing of an earlier membership
    await asyncio.to_thread(ident.save_certificates, swarm_dir, credentials.root_pem,
                            certs.KeyPair(credentials.cert_pem, credentials.key_pem), secrets.data_keys)
    identity = replace(swarm.identity, role="manager", raft_id=new_raft_id())
    manager = node.open_manager(identity, secrets, None)
    try:
        host, port = split(identity.listen_addr)
        port = await manager.listen(host, port)
        identity = replace(identity, listen_addr=f"{host}:{port}")
        members = await join_raft(manager.client, swarm.dispatcher.managers, identity.cluster_address,
                                  identity.raft_id)
        await manager.consensus.join(members)
        await manager.caught_up(identity.node_id, ca_join.JOIN_TIMEOUT, "the promoted manager did not catch up")
    except BaseException:
        await manager.stop()
        raise
    swarm.identity = replace(identity, managers=tuple(sorted(members.values())))
    swarm.manager, swarm.secrets, swarm.unlock_key = manager, secrets, None
    node.start_manager_loops(swarm)
    await node.sync_autolock()  # an autolocked swarm wraps the new manager's secrets at once


async def _demote(node: Node, swarm: Swarm, credentials: ca_join.Credentials) -> None:
    await _leave_manager_role(node, swarm)
    await asyncio.to_thread(ident.save_certificates, node.config.swarm_dir, credentials.root_pem,
                            certs.KeyPair(credentials.cert_pem, credentials.key_pem))


async def _leave_manager_role(node: Node, swarm: Swarm) -> None:
    """Stop the manager half and forget the Raft log (it belongs to a group this node is no longer in)."""
    await node.stop_manager(swarm)
    shutil.rmtree(ident.raft_dir(node.config.swarm_dir), ignore_errors=True)
    swarm.identity = replace(swarm.identity, role="worker", raft_id=0)
    swarm.secrets, swarm.unlock_key = None, None


async def step_down_when_removed(node: Node) -> None:
    """A manager demoted and removed (`node rm`) while it was cut off never sees its node object again:
    the managers refuse its certificate. The refusal of its agent's session is how it learns it; it
    then stops its manager half (its Raft member would otherwise campaign for ever in a group that no
    longer has it, and its API would answer cluster calls as a manager without a leader), and its API
    answers them as a worker's. (swarmkit too stops a manager that learns it left the Raft group; it
    then waits for a worker certificate, which a removed node never gets.) A demotion alone needs none
    of this: the session brings the node object, and change_role runs."""
    while (swarm := node.swarm) is None:  # node.py starts this loop before it sets node.swarm
        await node.clock.sleep(JOIN_POLL)
    await swarm.agent.removed.wait()
    async with node._lock:
        if node.swarm is not swarm or swarm.manager is None:
            return
        log.warning("this node was removed from the swarm: stopping its manager")
        await _leave_manager_role(node, swarm)
        ident.save_identity(node.config.swarm_dir, swarm.identity)


# -- renewal and root rotation


class CertificateKeeper:
    def __init__(self, node: Node, rng: random.Random | None = None) -> None:
        self._node = node
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._desired: Obj | None = None
        self._due: tuple[bytes, float] | None = None  # (certificate, when to renew it: epoch seconds)
        self._reported: dict[str, str] | None = None

    def notice(self, node_object: Obj) -> None:
        """This node's object as the managers sent it: follow a changed "_DesiredTLS"."""
        desired = node_object.get(DESIRED_TLS)
        if isinstance(desired, dict) and desired != self._desired:
            self._desired = desired
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        # A new membership (this loop runs once per swarm joined): nothing known from an earlier one.
        self._desired, self._due, self._reported = None, None, None
        failures = 0
        while True:
            self._wake.clear()
            swarm = self._node.swarm
            # node.py starts this loop before it sets node.swarm: look again shortly.
            action, delay = (None, JOIN_POLL) if swarm is None else self._next(swarm)
            if swarm is not None and action is not None:
                try:
                    await self._act(swarm, action)
                except (errors.ShoalError, OSError, ValueError) as exc:
                    failures += 1
                    delay = renewer.retry_delay(failures)
                    log.warning("certificate %s failed (%s); retrying in %.0f s", action, exc, delay)
                else:
                    if self._next(swarm)[0] == action:  # done, yet still wanted: do not spin on it
                        failures += 1
                        delay = renewer.retry_delay(failures)
                    else:
                        failures, delay = 0, 0.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _next(self, swarm: Swarm) -> tuple[str | None, float | None]:
        """What to do now ("renew", "root", "report") or, if nothing, how long to wait (None: until
        woken)."""
        chain, root = ident.read_certificates(self._node.config.swarm_dir)
        own = certs.node_tls_info(root, chain)
        desired = self._desired
        if desired is not None and desired.get("Issuer") != own["CertIssuerPublicKey"]:
            return "renew", None
        if desired is not None and desired.get("Root") != tokens.ca_digest(root):
            return "root", None
        if own != self._reported:
            return "report", None
        if self._due is None or self._due[0] != chain:
            now = self._node.clock.now()
            self._due = chain, now.timestamp() + renewer.renewal_delay(chain, now, self._rng)
        delay = self._due[1] - self._node.clock.now().timestamp()
        return ("renew", None) if delay <= 0 else (None, delay)

    async def _act(self, swarm: Swarm, action: str) -> None:
        swarm_dir = self._node.config.swarm_dir
        address = _ca_address(swarm)
        if action == "report":
            chain, root = ident.read_certificates(swarm_dir)
            info = certs.node_tls_info(root, chain)
            await ca_join.report_tls_info(swarm.client, address, info)
            self._reported = info
            return
        if action == "root":
            fetched = await ca_join.fetch_root(swarm.client, address)
            wanted = (self._desired or {}).get("Root")
            if tokens.ca_digest(fetched) != wanted:  # e.g. a manager that has not applied the change yet
                raise errors.Unavailable(f"{address} does not serve the swarm's new root CA yet")
            async with self._node._lock, self._node._wrap_lock:
                await asyncio.to_thread(ident.save_root, swarm_dir, fetched)
                tls.reload(ident.node_cert_path(swarm_dir), ident.tls_password(swarm.unlock_key))
            log.info("trusting the swarm's new root CA only")
            return
        credentials = await ca_join.renew(swarm.client, address)
        async with self._node._lock, self._node._wrap_lock:
            if self._node.swarm is not swarm or credentials.role != CERT_ROLE[swarm.identity.role]:
                # A role change is under way: it renews and installs its own certificate.
                raise errors.Unavailable(f"the CA signed role {credentials.role}; a role change is pending")
            data_keys = swarm.secrets.data_keys if swarm.secrets is not None else None
            await asyncio.to_thread(ident.save_certificates, swarm_dir, credentials.root_pem,
                                    certs.KeyPair(credentials.cert_pem, credentials.key_pem), data_keys,
                                    swarm.unlock_key)
            if swarm.secrets is not None:
                swarm.secrets = ident.NodeSecrets(credentials.key_pem, swarm.secrets.data_keys)
            tls.reload(ident.node_cert_path(swarm_dir), ident.tls_password(swarm.unlock_key))
        log.info("renewed this node's certificate")


_keepers: weakref.WeakKeyDictionary[Node, CertificateKeeper] = weakref.WeakKeyDictionary()


def keeper_of(node: Node) -> CertificateKeeper:
    keeper = _keepers.get(node)
    if keeper is None:
        keeper = _keepers[node] = CertificateKeeper(node)
    return keeper


async def keep_certificate(node: Node) -> None:
    """The node's certificate loop, and beside it the step-down of a manager removed while away (node.py
    runs this while the node is in a swarm)."""
    async with asyncio.TaskGroup() as group:
        group.create_task(keeper_of(node).run())
        group.create_task(step_down_when_removed(node))


def notice_own_node(node: Node, node_object: Obj) -> None:
    """node.py hands over every copy of its own node object the managers send."""
    keeper_of(node).notice(node_object)
