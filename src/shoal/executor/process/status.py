"""Pure helpers for what the process executor reports: `docker ps` status text and the environment
a task starts with."""

from __future__ import annotations

from datetime import datetime, timedelta

from shoal.executor.base import ContainerState

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def human_duration(delta: timedelta) -> str:
    """As Docker's units.HumanDuration ("Up 18 seconds", "About a minute", "3 hours", ...)."""
    seconds = int(delta.total_seconds())
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(delta.total_seconds() / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(delta.total_seconds() / 3600 / 24 / 365)} years"


def status_text(
    state: ContainerState,
    *,
    exit_code: int | None,
    started_at: datetime | None,
    finished_at: datetime | None,
    now: datetime,
) -> str:
    if state is ContainerState.RUNNING and started_at is not None:
        return f"Up {human_duration(now - started_at)}"
    if state is ContainerState.EXITED and finished_at is not None:
        return f"Exited ({exit_code}) {human_duration(now - finished_at)} ago"
    return "Created"


def task_environment(
    task_env: tuple[str, ...] | list[str], *, hostname: str, home: str, path: str | None, tty: bool = False
) -> list[str]:
    """PATH (the daemon's: the command runs on this host), HOSTNAME and HOME as Docker sets them,
    then the task's own variables, which win; order kept, one entry per name."""
    merged: dict[str, str] = {"PATH": f"PATH={path or DEFAULT_PATH}", "HOSTNAME": f"HOSTNAME={hostname}"}
    if tty:
        merged["TERM"] = "TERM=xterm"
    for entry in task_env:
        name = entry.partition("=")[0]
        merged[name] = entry if "=" in entry else f"{name}="
    merged.setdefault("HOME", f"HOME={home}")
    return list(merged.values())


def env_dict(entries: list[str] | tuple[str, ...]) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in entries)
