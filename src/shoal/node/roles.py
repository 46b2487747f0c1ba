"""`docker node promote` and `demote` as the node itself carries them out (swarmkit's node.go
superviseManager): the managers change the node's desired role in its node object; the node sees it in
its dispatcher session, renews its certificate (the CA signs the role the store holds now), and starts
or stops its manager half.

- Promotion: a manager certificate, fresh raft data keys, a Raft member id of its own; the manager
  starts listening, asks the leader to add it, and follows the log.
- Demotion: the leader has already taken the node out of the Raft group (see
  node.manager.Manager._reconcile_roles); the node gets a worker certificate, stops its manager and
  deletes its Raft log, which belongs to a group it is no longer in.

The agent's session, its tasks and the routing mesh are untouched throughout."""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import replace
from typing import TYPE_CHECKING

from shoal.api import errors
from shoal.ca import certs
from shoal.ca import join as ca_join
from shoal.manager.membership import join_raft, new_raft_id
from shoal.manager.wal.crypto import DataKey, KeyRing
from shoal.node import identity as ident
from shoal.node.addresses import split
from shoal.node.manager import ClusterTLS
from shoal.rpc.client import RpcClient

if TYPE_CHECKING:
    from shoal.node.node import Node, Swarm

log = logging.getLogger(__name__)
CERT_ROLE = {"manager": certs.ROLE_MANAGER, "worker": certs.ROLE_WORKER}


async def _renew(swarm: Swarm, desired: str) -> ca_join.Credentials:
    address = swarm.dispatcher.leader or swarm.dispatcher.managers[0]
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
    swarm_dir = node.config.swarm_dir
    await node.stop_manager(swarm)
    shutil.rmtree(ident.raft_dir(swarm_dir), ignore_errors=True)
    await asyncio.to_thread(ident.save_certificates, swarm_dir, credentials.root_pem,
                            certs.KeyPair(credentials.cert_pem, credentials.key_pem))
    swarm.identity = replace(swarm.identity, role="worker", raft_id=0)
    swarm.secrets, swarm.unlock_key = None, None
