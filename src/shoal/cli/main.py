"""`shoal`: the docker CLI's swarm commands for machines without it, built on docker-py."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import docker
from docker.errors import APIError, DockerException

from shoal.api.errors import ShoalError

DEFAULT_HOST = "unix:///var/run/shoal.sock"


class Context:
    def __init__(self, host: str) -> None:
        self.host = host
        self._api: docker.APIClient | None = None

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            self._api = docker.APIClient(base_url=self.host, version="auto", timeout=60)
        return self._api


def api_of(ctx: click.Context) -> docker.APIClient:
    obj = ctx.find_object(Context)
    assert obj is not None, "the shoal group sets the context object"
    return obj.api


class ShoalGroup(click.Group):
    """Prints daemon errors as `Error response from daemon: ...` and exits 1, like the docker CLI."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except APIError as exc:
            message = exc.explanation or str(exc)
            click.echo(f"Error response from daemon: {message}", err=True)
            sys.exit(1)
        except DockerException as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except ShoalError as exc:
            # Errors the client finds itself (a compose file that does not validate, a stack's failed
            # step), printed bare as the docker CLI prints them.
            click.echo(str(exc), err=True)
            sys.exit(1)


@click.group(cls=ShoalGroup)
@click.option("-H", "--host", default=lambda: os.environ.get("DOCKER_HOST", DEFAULT_HOST), show_default=DEFAULT_HOST,
              help="Daemon socket to connect to")
@click.pass_context
def cli(ctx: click.Context, host: str) -> None:
    """shoal: Docker Swarm mode, in Python."""
    ctx.obj = Context(host)


def main() -> None:
    from shoal.cli import node_cmds, service_cmds, stack_cmds, swarm_cmds, system_cmds

    cli.add_command(swarm_cmds.swarm)
    cli.add_command(node_cmds.node)
    cli.add_command(service_cmds.service)
    cli.add_command(stack_cmds.stack)
    cli.add_command(system_cmds.ps)
    cli.add_command(system_cmds.info)
    cli(prog_name="shoal")
