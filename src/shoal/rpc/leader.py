"""Calls that only the Raft leader may serve, reachable through any manager (swarmkit's raftproxy).

A manager that is not the leader forwards the call to the leader once, with the identity it verified
for the original caller; the leader re-checks that identity against the route's access rule, and only
trusts it because the forwarder's own certificate says manager. A forwarded call is never forwarded
again: if leadership moved meanwhile, the caller gets Unavailable and retries.
"""

from __future__ import annotations

from typing import Any, Protocol

from shoal.api import errors
from shoal.rpc.client import RpcClient
from shoal.rpc.identity import Access, PeerIdentity
from shoal.rpc.server import Caller, RpcServer, UnaryHandler

FORWARD_PREFIX = "/forwarded"
NO_LEADER = (
    "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than "
    "half of the managers are online."
)


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    def leader_address(self) -> str | None:
        """The cluster-port address of the current leader, if one is known."""
        ...


def _caller_fields(caller: Caller) -> dict[str, Any]:
    identity = caller.identity
    return {
        "remote": caller.remote,
        "identity": None if identity is None else [identity.node_id, identity.role, identity.cluster_id],
    }


def _caller_from(envelope: Any) -> tuple[Caller, Any]:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("caller"), dict):
        raise errors.InvalidArgument("malformed forwarded call")
    fields = envelope["caller"]
    identity = fields.get("identity")
    if identity is not None:
        if not (isinstance(identity, list) and len(identity) == 3 and all(isinstance(f, str) for f in identity)):
            raise errors.InvalidArgument("malformed forwarded identity")
        identity = PeerIdentity(*identity)
    return Caller(identity, str(fields.get("remote", "?"))), envelope.get("body")


def serve_on_leader(server: RpcServer, client: RpcClient, leadership: Leadership, path: str, access: Access,
                    handler: UnaryHandler) -> None:
    """Register ``handler`` at ``path`` so that it runs on the leader whichever manager is called."""

    async def here_or_on_leader(caller: Caller, body: Any) -> Any:
        if leadership.is_leader():
            return await handler(caller, body)
        address = leadership.leader_address()
        if address is None:
            raise errors.Unavailable(NO_LEADER)
        return await client.call(address, FORWARD_PREFIX + path, {"caller": _caller_fields(caller), "body": body})

    async def forwarded(forwarder: Caller, envelope: Any) -> Any:
        caller, body = _caller_from(envelope)
        refusal = server.policy.refusal(caller.identity, access)
        if refusal is not None:
            raise errors.Forbidden(f"permission denied: {refusal}")
        if not leadership.is_leader():
            raise errors.Unavailable("leadership moved while the call was forwarded; try again")
        return await handler(caller, body)

    server.unary(path, access, here_or_on_leader)
    server.unary(FORWARD_PREFIX + path, Access.MANAGER, forwarded)
