"""Errors typed by category. The Engine API maps each category to an HTTP status in one place
(shoal.engineapi.errors); nothing else chooses status codes.

Where Docker's message carries swarmkit's gRPC prefix (`rpc error: code = X desc = ...`), the
`grpc` flag makes str() produce it, because clients match on those strings."""

from __future__ import annotations

from typing import ClassVar


class ShoalError(Exception):
    """Base of every error a user can see. `code` names the category (gRPC-style)."""

    code: ClassVar[str] = "Unknown"

    def __init__(self, message: str, *, grpc: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.grpc = grpc

    def __str__(self) -> str:
        if self.grpc:
            return f"rpc error: code = {self.code} desc = {self.message}"
        return self.message


class NotFound(ShoalError):
    code = "NotFound"


class InvalidArgument(ShoalError):
    code = "InvalidArgument"


class AlreadyExists(ShoalError):
    code = "AlreadyExists"


class Conflict(ShoalError):
    code = "Conflict"


class FailedPrecondition(ShoalError):
    code = "FailedPrecondition"


class Unavailable(ShoalError):
    code = "Unavailable"


class Forbidden(ShoalError):
    code = "PermissionDenied"


class Unauthenticated(ShoalError):
    """The caller's credential (e.g. an unlock key) was refused: 401, as Docker's Unauthorized."""

    code = "Unauthenticated"


class NotImplementedYet(ShoalError):
    code = "Unimplemented"


class Unknown(ShoalError):
    code = "Unknown"


class OutOfSequence(Unknown):
    """An update carried a Version.Index older than the stored object's (Docker answers 500)."""

    def __init__(self) -> None:
        super().__init__("update out of sequence", grpc=True)


NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
    "this node to swarm and try again."
)
SWARM_LOCKED = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" '
    "to unlock it."
)
ALREADY_IN_SWARM = (
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join '
    "another one."
)


class NotAManager(Unavailable):
    def __init__(self) -> None:
        super().__init__(NOT_A_MANAGER)


class AlreadyInSwarm(Unavailable):
    def __init__(self) -> None:
        super().__init__(ALREADY_IN_SWARM)


class SwarmLocked(Unavailable):
    """An autolocked manager restarted and was not given its unlock key yet."""

    def __init__(self) -> None:
        super().__init__(SWARM_LOCKED)


class InvalidUnlockKey(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("swarm could not be unlocked: invalid key provided")


class NotLocked(Conflict):
    def __init__(self) -> None:
        super().__init__("swarm is not locked")


WORKER_NOT_A_MANAGER = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run "
    "this command on a manager node or promote the current node to a manager."
)


class WorkerNotAManager(Unavailable):
    """A cluster call on a worker (the docker CLI prints it as is)."""

    def __init__(self) -> None:
        super().__init__(WORKER_NOT_A_MANAGER)
