"""`shoal swarm init|join-token|leave`."""

from __future__ import annotations

import click

from shoal.cli.main import api_of


@click.group()
def swarm() -> None:
    """Manage the swarm."""


def _join_command(ctx: click.Context, role: str) -> str:
    api = api_of(ctx)
    node_id = api.info()["Swarm"]["NodeID"]
    addr = api.inspect_node(node_id)["ManagerStatus"]["Addr"]
    token = api.inspect_swarm()["JoinTokens"]["Worker" if role == "worker" else "Manager"]
    return f"    docker swarm join --token {token} {addr}"


@swarm.command()
@click.option("--advertise-addr", default="", help="Advertised address (format: <ip|interface>[:port])")
@click.option("--listen-addr", default="0.0.0.0:2377", show_default=True, help="Listen address")
@click.option("--availability", default="active", type=click.Choice(["active", "pause", "drain"]))
@click.option("--task-history-limit", default=5, show_default=True, type=int)
@click.option("--autolock", is_flag=True, help="Enable manager autolocking")
@click.pass_context
def init(ctx: click.Context, advertise_addr: str, listen_addr: str, availability: str, task_history_limit: int,
         autolock: bool) -> None:
    """Initialize a swarm."""
    api = api_of(ctx)
    spec = api.create_swarm_spec(task_history_retention_limit=task_history_limit, autolock_managers=autolock)
    node_id = api.init_swarm(advertise_addr=advertise_addr or None, listen_addr=listen_addr,
                             swarm_spec=spec)
    click.echo(f"Swarm initialized: current node ({node_id}) is now a manager.\n")
    click.echo("To add a worker to this swarm, run the following command:\n")
    click.echo(_join_command(ctx, "worker") + "\n")
    click.echo("To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.\n")


@swarm.command("join-token")
@click.argument("role", type=click.Choice(["worker", "manager"]))
@click.option("-q", "--quiet", is_flag=True, help="Only display token")
@click.option("--rotate", is_flag=True, help="Rotate join token")
@click.pass_context
def join_token(ctx: click.Context, role: str, quiet: bool, rotate: bool) -> None:
    """Manage join tokens."""
    api = api_of(ctx)
    if rotate:
        current = api.inspect_swarm()
        api.update_swarm(version=current["Version"]["Index"], swarm_spec=current["Spec"],
                         rotate_worker_token=role == "worker", rotate_manager_token=role == "manager")
        if not quiet:
            click.echo(f"Successfully rotated {role} join token.\n")
    token = api.inspect_swarm()["JoinTokens"]["Worker" if role == "worker" else "Manager"]
    if quiet:
        click.echo(token)
        return
    click.echo(f"To add a {role} to this swarm, run the following command:\n")
    click.echo(_join_command(ctx, role) + "\n")


@swarm.command()
@click.option("-f", "--force", is_flag=True, help="Force this node to leave the swarm, ignoring warnings")
@click.pass_context
def leave(ctx: click.Context, force: bool) -> None:
    """Leave the swarm."""
    api_of(ctx).leave_swarm(force=force)
    click.echo("Node left the swarm.")
