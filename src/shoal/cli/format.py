"""Output the way the docker CLI prints it: tab-aligned tables (3 spaces between columns) and Go's
human durations ("5 seconds ago", "About a minute ago")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from shoal.base.clock import parse_rfc3339


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], min_width: int = 0) -> str:
    """`min_width` counts the 3-space gap, as Go's tabwriter does (the docker CLI's tables use 10)."""
    widths = [max(len(h), min_width - 3) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 2:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days"
    if days < 60:
        return f"{int(days / 7)} weeks"
    if days < 365 * 2:
        return f"{int(days / 30)} months"
    return f"{int(days / 365)} years"


def ago(timestamp: str, now: datetime | None = None) -> str:
    if not timestamp:
        return ""
    moment = parse_rfc3339(timestamp)
    elapsed = ((now or datetime.now(UTC)) - moment).total_seconds()
    return f"{human_duration(max(elapsed, 0))} ago"


def state_since(state: str, timestamp: str, now: datetime | None = None) -> str:
    """A task's CURRENT STATE cell: "Running 5 seconds ago", "Starting less than a second ago" (the
    docker CLI lowercases the duration here, unlike its CREATED columns)."""
    since = ago(timestamp, now)
    return f"{state.capitalize()} {since[:1].lower()}{since[1:]}".rstrip()


def short_id(value: str, length: int = 12) -> str:
    return value[:length]


def strip_digest(image: str) -> str:
    return image.split("@", 1)[0]
