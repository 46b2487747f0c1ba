"""`shoal swarm init|join|join-token|leave|update|unlock|unlock-key`."""

from __future__ import annotations

import sys

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
    click.echo("To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.")
    if autolock:
        _echo_unlock_command(_fetch_unlock_key(ctx))


@swarm.command()
@click.option("--token", required=True, help="Token for entry into the swarm")
@click.option("--advertise-addr", default="", help="Advertised address (format: <ip|interface>[:port])")
@click.option("--listen-addr", default="0.0.0.0:2377", show_default=True, help="Listen address")
@click.option("--availability", default="active", type=click.Choice(["active", "pause", "drain"]))
@click.argument("remote")
@click.pass_context
def join(ctx: click.Context, token: str, advertise_addr: str, listen_addr: str, availability: str,
         remote: str) -> None:
    """Join a swarm as a node and/or manager (the token decides which)."""
    api = api_of(ctx)
    request = {"RemoteAddrs": [remote], "JoinToken": token, "ListenAddr": listen_addr,
               "AdvertiseAddr": advertise_addr, "Availability": availability}
    api._raise_for_status(api._post_json(api._url("/swarm/join"), data=request))  # docker-py has no availability
    role = "manager" if api.info()["Swarm"].get("ControlAvailable") else "worker"
    click.echo(f"This node joined a swarm as a {role}.")


def _fetch_unlock_key(ctx: click.Context) -> str:
    return str(api_of(ctx).get_unlock_key().get("UnlockKey") or "")


def _echo_unlock_command(key: str) -> None:
    """What the docker CLI prints with a new or shown unlock key."""
    if key:
        click.echo("To unlock a swarm manager after it restarts, run the `docker swarm unlock`\n"
                   f"command and provide the following key:\n\n    {key}\n\n"
                   "Remember to store this key in a password manager, since without it you\n"
                   "will not be able to restart the manager.")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


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


@swarm.command()
@click.option("--autolock", type=click.BOOL, default=None, help="Change manager autolocking setting (true|false)")
@click.pass_context
def update(ctx: click.Context, autolock: bool | None) -> None:
    """Update the swarm."""
    api = api_of(ctx)
    current = api.inspect_swarm()
    spec = current["Spec"]
    was_locking = bool(spec.get("EncryptionConfig", {}).get("AutoLockManagers"))
    if autolock is not None:
        spec.setdefault("EncryptionConfig", {})["AutoLockManagers"] = autolock
    api.update_swarm(version=current["Version"]["Index"], swarm_spec=spec)
    click.echo("Swarm updated.")
    if autolock and not was_locking:
        _echo_unlock_command(_fetch_unlock_key(ctx))


@swarm.command()
@click.pass_context
def unlock(ctx: click.Context) -> None:
    """Unlock swarm (the key is read from standard input)."""
    api = api_of(ctx)
    state = api.info()["Swarm"]["LocalNodeState"]
    if state == "inactive":
        _fail("Error: This node is not part of a swarm")
    if state != "locked":
        _fail("Error: swarm is not locked")
    key = click.prompt("Enter unlock key", hide_input=True, prompt_suffix=": ") if sys.stdin.isatty() \
        else sys.stdin.readline().strip()
    api.unlock_swarm(key)


@swarm.command("unlock-key")
@click.option("-q", "--quiet", is_flag=True, help="Only display token")
@click.option("--rotate", is_flag=True, help="Rotate unlock key")
@click.pass_context
def unlock_key(ctx: click.Context, quiet: bool, rotate: bool) -> None:
    """Manage the unlock key."""
    api = api_of(ctx)
    if rotate:
        current = api.inspect_swarm()
        if not current["Spec"].get("EncryptionConfig", {}).get("AutoLockManagers"):
            _fail("cannot rotate because autolock is not turned on")
        api.update_swarm(version=current["Version"]["Index"], swarm_spec=current["Spec"],
                         rotate_manager_unlock_key=True)
        if not quiet:
            click.echo("Successfully rotated manager unlock key.")
    key = _fetch_unlock_key(ctx)
    if not key:
        _fail("no unlock key is set")
    if quiet:
        click.echo(key)
    else:
        _echo_unlock_command(key)
