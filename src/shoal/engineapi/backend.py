"""The Backend protocol: everything the Engine API front door asks of the daemon behind it.

The HTTP layer parses requests into the small typed values below and hands objects through untouched:
objects go in and come out as dicts already in the Docker API's JSON shape (`Spec`, `Version.Index`,
RFC 3339 times...). Methods raise `shoal.api.errors` categories; the HTTP layer maps them to statuses in
one place (shoal.engineapi.errors). A backend may raise `NotImplementedYet` for anything it lacks.

Reference strings (`ref`) are what the client sent: a full ID, a unique ID prefix or a name; resolving
them is the backend's job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

Json = dict[str, Any]
"""An object in the Docker API's JSON shape."""

Filters = dict[str, list[str]]
"""`?filters=` parsed from either `{"k":{"v":true}}` or `{"k":["v"]}`; keys map to their values."""

# Stream numbers of the stdcopy framing (moby's pkg/stdcopy).
STDIN = 0
STDOUT = 1
STDERR = 2
SYSTEM_ERROR = 3


@dataclass(frozen=True)
class LogOptions:
    """Query of a logs request. `tail=None` means all lines; `since`/`until=None` means unbounded."""

    follow: bool = False
    tail: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    timestamps: bool = False
    stdout: bool = True
    stderr: bool = True
    details: bool = False


@dataclass(frozen=True)
class LogMessage:
    """One log line of a task. `data` includes the trailing newline if the line had one; `attrs` are
    the details (`com.docker.swarm.node.id` ...) shown when `details=1`."""

    stream: int
    timestamp: datetime
    data: bytes
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventQuery:
    """`GET /events`: replay from `since`, stop at `until` (None: keep streaming), keep matching ones."""

    since: datetime | None = None
    until: datetime | None = None
    filters: Filters = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerListQuery:
    all: bool = False
    limit: int | None = None
    size: bool = False
    filters: Filters = field(default_factory=dict)


@dataclass(frozen=True)
class ExecStartOptions:
    detach: bool = False
    tty: bool = False


class ExecStream(Protocol):
    """A running exec: its output and, when the exec was created with AttachStdin, its stdin."""

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(stream, bytes) chunks until the process exits. With a TTY, stream is STDOUT throughout."""
        ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None:
        """The client half-closed or left: the process sees end of input."""
        ...


@dataclass(frozen=True)
class SwarmUpdateFlags:
    rotate_worker_token: bool = False
    rotate_manager_token: bool = False
    rotate_manager_unlock_key: bool = False


class Backend(Protocol):
    # -- system ---------------------------------------------------------------------------------
    async def version(self) -> Json:
        """`GET /version` body (ApiVersion 1.41, MinAPIVersion 1.12, Components...)."""
        ...

    async def info(self) -> Json:
        """`GET /info` body, with a complete `Swarm` block."""
        ...

    async def swarm_status(self) -> str:
        """`inactive|pending|error|locked|active/worker|active/manager`; served as the `Swarm` header
        of /_ping only if the front door is configured to (dockerd 20.10 does not send it)."""
        ...

    def events(self, query: EventQuery) -> AsyncIterator[Json]:
        """Event messages in Docker's shape (`Type`, `Action`, `Actor`, `scope`, `time`, `timeNano`);
        ends at `query.until`, otherwise runs until the client leaves."""
        ...

    # -- swarm ----------------------------------------------------------------------------------
    async def swarm_init(self, request: Json) -> str:
        """Returns the new node's ID."""
        ...

    async def swarm_join(self, request: Json) -> None: ...

    async def swarm_leave(self, force: bool) -> None: ...

    async def swarm_inspect(self) -> Json: ...

    async def swarm_update(self, spec: Json, version: int, flags: SwarmUpdateFlags) -> None: ...

    async def swarm_unlock_key(self) -> Json:
        """`{"UnlockKey": "SWMKEY-1-..."}`."""
        ...

    async def swarm_unlock(self, request: Json) -> None: ...

    # -- nodes ----------------------------------------------------------------------------------
    async def nodes_list(self, filters: Filters) -> list[Json]: ...

    async def node_inspect(self, ref: str) -> Json: ...

    async def node_update(self, ref: str, version: int, spec: Json) -> None: ...

    async def node_remove(self, ref: str, force: bool) -> None: ...

    # -- services -------------------------------------------------------------------------------
    async def services_list(self, filters: Filters, status: bool) -> list[Json]: ...

    async def service_create(self, spec: Json, registry_auth: str | None) -> Json:
        """Returns `{"ID": ..., "Warnings": [...] or None}`."""
        ...

    async def service_inspect(self, ref: str, insert_defaults: bool) -> Json: ...

    async def service_update(
        self,
        ref: str,
        version: int,
        spec: Json,
        registry_auth_from: str,
        rollback: str,
        registry_auth: str | None,
    ) -> Json:
        """Returns `{"Warnings": ...}`. `registry_auth_from` is `spec` or `previous-spec`;
        `rollback` is `previous` or empty."""
        ...

    async def service_remove(self, ref: str) -> None: ...

    def service_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]:
        """Raise NotFound before the first item for an unknown service (the front door waits for the
        first item, or the end, before sending the 200 header)."""
        ...

    # -- tasks ----------------------------------------------------------------------------------
    async def tasks_list(self, filters: Filters) -> list[Json]: ...

    async def task_inspect(self, ref: str) -> Json: ...

    def task_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]: ...

    # -- containers and exec (the tasks on this node) -------------------------------------------
    async def containers_list(self, query: ContainerListQuery) -> list[Json]: ...

    async def container_inspect(self, ref: str) -> Json: ...

    def container_logs(self, ref: str, options: LogOptions) -> AsyncIterator[LogMessage]: ...

    async def container_kill(self, ref: str, signal: str) -> None:
        """`signal` as sent (`SIGHUP`, `HUP`, `1`; empty: SIGKILL); a bad one is InvalidArgument with
        dockerd's `Invalid signal: X`; Conflict when the container is not running."""
        ...

    async def container_stop(self, ref: str, timeout: int | None) -> bool:
        """False when it was not running (the route answers 304, as dockerd)."""
        ...

    async def container_restart(self, ref: str, timeout: int | None) -> None:
        """Stop, then start the same container again (its task fails and is replaced, as in Swarm)."""
        ...

    async def container_remove(self, ref: str, force: bool, volumes: bool) -> None:
        """Conflict while it runs, unless forced. A task's container that goes fails its task, which the
        orchestrator replaces, as in Swarm."""
        ...

    async def container_pause(self, ref: str) -> None: ...

    async def container_unpause(self, ref: str) -> None: ...

    async def container_wait(self, ref: str, condition: str) -> Json:
        """`{"StatusCode": N, "Error": null}` once the container is not running."""
        ...

    async def container_stats(self, ref: str, stream: bool, one_shot: bool) -> AsyncIterator[Json]:
        """types.StatsJSON messages, a second apart while `stream`; raises before the first for an
        unknown container."""
        ...

    async def container_attach(self, ref: str, stream: bool, logs: bool) -> AsyncIterator[tuple[int, bytes]]:
        """(stream, bytes) of the container's output: what it wrote before (`logs`), then what it
        writes until it exits (`stream`). Raises before the first item for an unknown container."""
        ...

    async def container_top(self, ref: str, ps_args: str) -> Json:
        """`{"Titles": [...], "Processes": [[...], ...]}`."""
        ...

    async def container_archive_stat(self, ref: str, path: str) -> Json:
        """The path's stat (`name`, `size`, `mode` as Go's FileMode bits, `mtime`, `linkTarget`);
        NotFound `Could not find the file P in container C`."""
        ...

    async def container_archive_get(self, ref: str, path: str) -> tuple[Json, AsyncIterator[bytes]]:
        """The stat and a tar stream of the path."""
        ...

    async def container_archive_put(self, ref: str, path: str, body: AsyncIterator[bytes],
                                    no_overwrite_dir_non_dir: bool) -> None:
        """Unpack a tar into the directory `path` of the container."""
        ...

    async def exec_create(self, container_ref: str, config: Json) -> str:
        """Returns the exec ID."""
        ...

    async def exec_start(self, exec_id: str, options: ExecStartOptions) -> ExecStream: ...

    async def exec_inspect(self, exec_id: str) -> Json:
        """`ExitCode` (null while running), `Running`, `ProcessConfig`, `ContainerID`..."""
        ...

    async def exec_resize(self, exec_id: str, height: int, width: int) -> None: ...

    # -- volumes (this node's, local driver) -----------------------------------------------------
    async def volumes_list(self, filters: Filters) -> Json:
        """`{"Volumes": [...], "Warnings": null}`."""
        ...

    async def volume_create(self, request: Json) -> Json: ...

    async def volume_inspect(self, name: str) -> Json: ...

    async def volume_remove(self, name: str, force: bool) -> None:
        """Conflict `remove NAME: volume is in use - [IDs]` while a container uses it."""
        ...

    async def volumes_prune(self, filters: Filters) -> Json:
        """`{"VolumesDeleted": [...] or null, "SpaceReclaimed": N}`."""
        ...

    async def system_df(self) -> Json:
        """`GET /system/df`: `LayersSize`, `Images` (with `Containers` using each), `Containers`,
        `Volumes` (with `UsageData`), `BuildCache`."""
        ...

    # -- networks -------------------------------------------------------------------------------
    async def networks_list(self, filters: Filters) -> list[Json]: ...

    async def network_create(self, request: Json) -> Json:
        """Returns `{"Id": ..., "Warning": ""}`."""
        ...

    async def network_inspect(self, ref: str, scope: str | None, verbose: bool) -> Json: ...

    async def network_remove(self, ref: str) -> None: ...

    # -- secrets and configs --------------------------------------------------------------------
    async def secrets_list(self, filters: Filters) -> list[Json]: ...

    async def secret_create(self, spec: Json) -> Json:
        """Returns `{"ID": ...}`."""
        ...

    async def secret_inspect(self, ref: str) -> Json: ...

    async def secret_update(self, ref: str, version: int, spec: Json) -> None: ...

    async def secret_remove(self, ref: str) -> None: ...

    async def configs_list(self, filters: Filters) -> list[Json]: ...

    async def config_create(self, spec: Json) -> Json:
        """Returns `{"ID": ...}`."""
        ...

    async def config_inspect(self, ref: str) -> Json: ...

    async def config_update(self, ref: str, version: int, spec: Json) -> None: ...

    async def config_remove(self, ref: str) -> None: ...

    # -- images, distribution and registry login (the node's image store) ----------------------
    async def images_list(self, filters: Filters) -> list[Json]:
        """`GET /images/json` rows, newest first."""
        ...

    async def image_inspect(self, ref: str) -> Json: ...

    async def image_history(self, ref: str) -> list[Json]: ...

    async def image_pull(self, ref: str, platform: str | None, registry_auth: str | None) -> AsyncIterator[Json]:
        """`POST /images/create?fromImage=`: a bad reference raises before the stream begins (a 400);
        after that, failures are the stream's last message (`{"errorDetail": ..., "error": ...}`)."""
        ...

    async def image_import(
        self, source: AsyncIterator[bytes], repo: str, tag: str, changes: list[str], message: str
    ) -> list[Json]:
        """`POST /images/create?fromSrc=-`: consumes the tarball; `[{"status": "sha256:..."}]`."""
        ...

    async def image_load(self, source: AsyncIterator[bytes], quiet: bool) -> list[Json]:
        """`POST /images/load`: `[{"stream": "Loaded image: NAME\\n"}, ...]`."""
        ...

    async def image_save(self, refs: list[str]) -> AsyncIterator[bytes]:
        """`GET /images/get` and `/images/{name}/get`: a missing image raises before any byte."""
        ...

    async def image_tag(self, ref: str, repo: str, tag: str) -> None: ...

    async def image_remove(self, ref: str, force: bool, noprune: bool) -> list[Json]:
        """`[{"Untagged": ...}, {"Deleted": ...}]`; Conflict while a container uses it (unless forced)."""
        ...

    async def images_prune(self, filters: Filters) -> Json:
        """`{"ImagesDeleted": [...] or None, "SpaceReclaimed": N}`."""
        ...

    async def distribution_inspect(self, image: str, registry_auth: str | None) -> Json:
        """`Descriptor` + `Platforms` from the registry (the CLI pins services to the digest)."""
        ...

    async def auth(self, request: Json) -> Json:
        """`POST /auth` (docker login): the credentials checked against the registry;
        `{"Status": "Login Succeeded", "IdentityToken": ""}`, Unauthenticated (401) if refused."""
        ...
