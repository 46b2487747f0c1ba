"""`shoal ps` and `shoal info`."""

from __future__ import annotations

import time

import click

from shoal.cli.format import human_duration, short_id, table
from shoal.cli.main import api_of


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True)
@click.pass_context
def ps(ctx: click.Context, show_all: bool, quiet: bool) -> None:
    """List this node's task containers."""
    containers = api_of(ctx).containers(all=show_all)
    if quiet:
        click.echo("\n".join(short_id(c["Id"]) for c in containers))
        return
    now = time.time()
    rows = [[short_id(c["Id"]), c["Image"], f"\"{c['Command'][:20]}\"", f"{human_duration(now - c['Created'])} ago",
             c["Status"], "", ",".join(n.lstrip("/") for n in c["Names"])] for c in containers]
    click.echo(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))


@click.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Display system-wide information."""
    data = api_of(ctx).info()
    swarm = data.get("Swarm") or {}
    lines = [
        "Server:",
        f" Containers: {data.get('Containers', 0)}",
        f"  Running: {data.get('ContainersRunning', 0)}",
        f"  Stopped: {data.get('ContainersStopped', 0)}",
        f" Server Version: {data.get('ServerVersion', '')}",
        f" Swarm: {swarm.get('LocalNodeState', 'inactive')}",
    ]
    if swarm.get("LocalNodeState") == "active":
        cluster = swarm.get("Cluster") or {}
        lines += [
            f"  NodeID: {swarm.get('NodeID', '')}",
            f"  Is Manager: {str(swarm.get('ControlAvailable', False)).lower()}",
            f"  ClusterID: {cluster.get('ID', '')}",
            f"  Managers: {swarm.get('Managers', 0)}",
            f"  Nodes: {swarm.get('Nodes', 0)}",
            f"  Node Address: {swarm.get('NodeAddr', '')}",
        ]
    lines += [
        f" Kernel Version: {data.get('KernelVersion', '')}",
        f" Operating System: {data.get('OperatingSystem', '')}",
        f" CPUs: {data.get('NCPU', 0)}",
        f" Total Memory: {data.get('MemTotal', 0) / 2**30:.2f}GiB",
        f" Name: {data.get('Name', '')}",
        f" Docker Root Dir: {data.get('DockerRootDir', '')}",
    ]
    click.echo("\n".join(lines))
