"""Errors an executor raises. Each also carries a shoal.api.errors category, so the Engine API maps it
to an HTTP status without knowing executors, and the agent can tell a task that must be rejected
(fatal) from a hiccup worth retrying (`temporary`)."""

from __future__ import annotations

from typing import ClassVar

from shoal.api.errors import Conflict, InvalidArgument, NotFound, ShoalError


class ExecutorError(ShoalError):
    """Base of executor errors. `temporary` errors are retried by the agent; others fail the task."""

    temporary: ClassVar[bool] = False


class TemporaryExecutorError(ExecutorError):
    temporary = True


class ContainerNotFound(ExecutorError, NotFound):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"No such container: {container_id}")
        self.container_id = container_id


class ExecNotFound(ExecutorError, NotFound):
    def __init__(self, exec_id: str) -> None:
        super().__init__(f"No such exec instance: {exec_id}")
        self.exec_id = exec_id


class CommandRequired(ExecutorError, InvalidArgument):
    """The task gives nothing to run and the executor has no image default to fall back on."""

    def __init__(self, executor_name: str) -> None:
        super().__init__(f"{executor_name} executor: task has no command (set the service's command or args)")


class InvalidTaskSpec(ExecutorError, InvalidArgument):
    """Something in the task cannot be honoured by this executor (unknown user, bad signal, ...)."""


class ContainerNotRunning(ExecutorError, Conflict):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"Container {container_id} is not running")
        self.container_id = container_id
