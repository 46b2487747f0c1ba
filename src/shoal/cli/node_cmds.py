"""`shoal node ls|inspect|update`."""

from __future__ import annotations

import json

import click

from shoal.cli.format import table
from shoal.cli.main import api_of


@click.group()
def node() -> None:
    """Manage swarm nodes."""


@node.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.pass_context
def ls(ctx: click.Context, quiet: bool, filters: tuple[str, ...]) -> None:
    """List nodes in the swarm."""
    api = api_of(ctx)
    parsed: dict[str, list[str]] = {}
    for item in filters:
        key, _, value = item.partition("=")
        parsed.setdefault(key, []).append(value)
    nodes = api.nodes(filters=parsed or None)
    if quiet:
        click.echo("\n".join(n["ID"] for n in nodes))
        return
    self_id = api.info()["Swarm"]["NodeID"]
    rows = []
    for item in nodes:
        manager = item.get("ManagerStatus") or {}
        status = "Leader" if manager.get("Leader") else (manager.get("Reachability") or "").capitalize()
        rows.append([
            item["ID"] + (" *" if item["ID"] == self_id else ""),
            item["Description"].get("Hostname", ""),
            item["Status"]["State"].capitalize(),
            item["Spec"].get("Availability", "").capitalize(),
            status,
            (item["Description"].get("Engine") or {}).get("EngineVersion", ""),
        ])
    click.echo(table(["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"], rows))


def _resolve(ctx: click.Context, ref: str) -> str:
    return str(api_of(ctx).info()["Swarm"]["NodeID"]) if ref == "self" else ref


@node.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Display detailed information on one or more nodes."""
    api = api_of(ctx)
    click.echo(json.dumps([api.inspect_node(_resolve(ctx, ref)) for ref in refs], indent=4))


@node.command()
@click.argument("ref")
@click.option("--availability", type=click.Choice(["active", "pause", "drain"]))
@click.option("--role", type=click.Choice(["worker", "manager"]))
@click.option("--label-add", multiple=True, help="Add or update a node label (key=value)")
@click.option("--label-rm", multiple=True, help="Remove a node label if exists")
@click.pass_context
def update(ctx: click.Context, ref: str, availability: str | None, role: str | None, label_add: tuple[str, ...],
           label_rm: tuple[str, ...]) -> None:
    """Update a node."""
    api = api_of(ctx)
    current = api.inspect_node(_resolve(ctx, ref))
    spec = dict(current["Spec"])
    labels = dict(spec.get("Labels") or {})
    for item in label_add:
        key, _, value = item.partition("=")
        labels[key] = value
    for key in label_rm:
        labels.pop(key, None)
    spec["Labels"] = labels
    if availability:
        spec["Availability"] = availability
    if role:
        spec["Role"] = role
    api.update_node(current["ID"], current["Version"]["Index"], spec)
    click.echo(ref)
