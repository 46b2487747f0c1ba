"""`shoal stack deploy|ls|services|ps|rm`: compose files converted on the client, as the docker CLI does."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import docker
import docker.auth
from docker.errors import APIError

from shoal.api.errors import NotFound, ShoalError
from shoal.cli.format import short_id, state_since, strip_digest, table
from shoal.cli.main import api_of
from shoal.cli.progress import wait_converged
from shoal.compose import deploy as stack_deploy
from shoal.compose.loader import load

DETACH_NOTICE = ("Since --detach=false was not specified, tasks will be created in the background.\n"
                 "In a future release, --detach=false will become the default.")
# The docker CLI's table writer pads every column to at least 10 characters.
MIN_COLUMN = 10


class DockerPyEngine:
    """shoal.compose.deploy's EngineClient on docker-py's low-level client."""

    def __init__(self, api: docker.APIClient) -> None:
        self.api = api

    def _call(self, response: Any) -> Any:
        try:
            return self.api._result(response, True) if response.content else None
        except APIError as exc:
            message = f"Error response from daemon: {exc.explanation or exc}"
            if exc.status_code == 404:
                raise NotFound(message) from None
            raise ShoalError(message) from None

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        return self._call(self.api._get(self.api._url(path), params=params, headers=headers or {}))

    def post(self, path: str, body: Any, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        # Not _post_json: it drops top-level nulls, and the CLI sends them ("IPAM": null on a network).
        return self._call(self.api._post(self.api._url(path), data=json.dumps(body), params=params,
                                         headers={**(headers or {}), "Content-Type": "application/json"}))

    def delete(self, path: str) -> None:
        self._call(self.api._delete(self.api._url(path)))


def _registry_auth(api: docker.APIClient) -> Any:
    """--with-registry-auth: the credentials docker login stored for the image's registry."""
    def header(image: str) -> str | None:
        registry, _ = docker.auth.resolve_repository_name(image.split("@")[0])
        value = docker.auth.get_config_header(api, registry)
        return value.decode() if isinstance(value, bytes) else value
    return header


def _err(text: str) -> None:
    click.echo(text, err=True)


@click.group()
def stack() -> None:
    """Manage Swarm stacks."""


@stack.command()
@click.option("-c", "--compose-file", "compose_files", multiple=True,
              help='Path to a Compose file, or "-" to read from stdin')
@click.option("--prune", is_flag=True, help="Prune services that are no longer referenced")
@click.option("--resolve-image", default=stack_deploy.RESOLVE_ALWAYS,
              help='Query the registry to resolve image digest and supported platforms ("always", "changed", '
                   '"never")')
@click.option("--with-registry-auth", is_flag=True, help="Send registry authentication details to Swarm agents")
@click.option("-d", "--detach", is_flag=False, flag_value="true", default=None,
              help="Exit immediately instead of waiting for the stack services to converge")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.argument("namespace")
@click.pass_context
def deploy(ctx: click.Context, compose_files: tuple[str, ...], prune: bool, resolve_image: str,
           with_registry_auth: bool, detach: str | None, quiet: bool, namespace: str) -> None:
    """Deploy a new stack or update an existing stack."""
    if not namespace.strip(" \t\n\"'"):
        raise ShoalError(f'invalid stack name: "{namespace}"')
    files = [name for item in compose_files for name in item.split(",")]
    compose = load(files, stdin=sys.stdin)
    for warning in compose.warnings:
        _err(warning)
    if resolve_image not in (stack_deploy.RESOLVE_ALWAYS, stack_deploy.RESOLVE_CHANGED, stack_deploy.RESOLVE_NEVER):
        raise ShoalError(f"invalid option {resolve_image} for flag --resolve-image")
    # -d/--detach is a Go bool flag: "--detach=false" waits; left out, it detaches with a notice.
    detached = detach is None or detach.lower() in ("true", "1", "t")
    if detach is None:
        _err(DETACH_NOTICE)
    api = api_of(ctx)
    options = stack_deploy.DeployOptions(resolve_image=resolve_image, prune=prune,
                                         registry_auth=_registry_auth(api) if with_registry_auth else None)
    ids = stack_deploy.deploy(DockerPyEngine(api), compose, namespace, options, click.echo, _err)
    if detached:
        return
    failed = [service_id for service_id in ids
              if not wait_converged(api, service_id, (lambda _text: None) if quiet else click.echo)]
    if failed:
        raise ShoalError("\n".join(f"{service_id}: service did not converge" for service_id in failed))


@stack.command("ls")
@click.pass_context
def ls(ctx: click.Context) -> None:
    """List stacks."""
    rows = [[name, str(count)] for name, count in stack_deploy.list_stacks(DockerPyEngine(api_of(ctx)))]
    click.echo(table(["NAME", "SERVICES"], rows, min_width=MIN_COLUMN))


def _mode_and_replicas(service: dict[str, Any]) -> tuple[str, str]:
    """MODE and REPLICAS as the docker CLI's service table shows them (jobs with their completions,
    replicated services with their per-node maximum)."""
    mode = service["Spec"].get("Mode") or {}
    status = service.get("ServiceStatus") or {}
    running, desired, completed = (int(status.get(key) or 0)
                                   for key in ("RunningTasks", "DesiredTasks", "CompletedTasks"))
    if "ReplicatedJob" in mode:
        total = int((mode["ReplicatedJob"] or {}).get("TotalCompletions") or 0)
        return "replicated job", f"{running}/{desired} ({completed}/{total} completed)"
    if "GlobalJob" in mode:
        # Desired counts only the tasks still to complete: the whole job is those plus the completed ones.
        return "global job", f"{running}/{desired} ({completed}/{desired + completed} completed)"
    if "Global" in mode:
        return "global", f"{running}/{desired}"
    per_node = int(((service["Spec"].get("TaskTemplate") or {}).get("Placement") or {}).get("MaxReplicas") or 0)
    if per_node:
        return "replicated", f"{running}/{desired} (max {per_node} per node)"
    return "replicated", f"{running}/{desired}"


@stack.command()
@click.argument("namespace")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.pass_context
def services(ctx: click.Context, namespace: str, quiet: bool) -> None:
    """List the services in the stack."""
    api = api_of(ctx)
    found = DockerPyEngine(api).get("/services", params={**stack_deploy.namespace_filter(namespace), "status": "true"})
    if not found:
        _err(f"Nothing found in stack: {namespace}")
        return
    found = sorted(found, key=lambda s: s["Spec"]["Name"])
    if quiet:
        click.echo("\n".join(s["ID"] for s in found))
        return
    rows = []
    for item in found:
        mode, replicas = _mode_and_replicas(item)
        ports = ", ".join(f"*:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}"
                          for p in (item.get("Endpoint") or {}).get("Ports") or [] if p.get("PublishMode") == "ingress")
        rows.append([short_id(item["ID"]), item["Spec"]["Name"], mode, replicas,
                     strip_digest(item["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]), ports])
    click.echo(table(["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"], rows, min_width=MIN_COLUMN))


@stack.command()
@click.argument("namespace")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs")
@click.pass_context
def ps(ctx: click.Context, namespace: str, no_trunc: bool, quiet: bool) -> None:
    """List the tasks in the stack."""
    api = api_of(ctx)
    tasks = DockerPyEngine(api).get("/tasks", params=stack_deploy.namespace_filter(namespace)) or []
    if not tasks:
        _err(f"Nothing found in stack: {namespace}")
        return
    if quiet:
        click.echo("\n".join(t["ID"] for t in tasks))
        return
    services: dict[str, str] = {}
    nodes: dict[str, str] = {}
    for task in tasks:
        if task["ServiceID"] not in services:
            services[task["ServiceID"]] = api.inspect_service(task["ServiceID"])["Spec"]["Name"]
        node_id = task.get("NodeID") or ""
        if node_id and node_id not in nodes:
            node = api.inspect_node(node_id)
            nodes[node_id] = node["Spec"].get("Name") or node["Description"]["Hostname"]
    # One group per slot (per node for global services), newest task first, older ones as " \_ " history.
    groups: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        name = f"{services[task['ServiceID']]}.{task.get('Slot') or task.get('NodeID') or ''}"
        groups.setdefault(name, []).append(task)
    rows = []
    for name in sorted(groups):
        for position, task in enumerate(sorted(groups[name], key=lambda t: t["CreatedAt"], reverse=True)):
            status = task["Status"]
            error = status.get("Err") or ""
            rows.append([task["ID"] if no_trunc else short_id(task["ID"]),
                         name if position == 0 else f" \\_ {name}",
                         strip_digest(task["Spec"]["ContainerSpec"]["Image"]), nodes.get(task.get("NodeID") or "", ""),
                         task["DesiredState"].capitalize(),
                         state_since(status["State"], status.get("Timestamp", "")),
                         error if no_trunc or not error else f'"{error}"', ""])
    click.echo(table(["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"], rows,
                     min_width=MIN_COLUMN))


@stack.command(name="rm")
@click.argument("namespaces", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, namespaces: tuple[str, ...]) -> None:
    """Remove one or more stacks."""
    errors = stack_deploy.remove(DockerPyEngine(api_of(ctx)), list(namespaces), click.echo, _err)
    if errors:
        raise ShoalError("\n".join(errors))


# The docker CLI's aliases.
stack.add_command(deploy, "up")
stack.add_command(rm, "remove")
stack.add_command(rm, "down")
