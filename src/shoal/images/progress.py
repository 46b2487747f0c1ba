"""The JSON progress messages dockerd streams from POST /images/create, in the exact shapes the
docker CLI draws as progress bars (its jsonmessage package)."""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]
_BAR_WIDTH = 50


def human_size(size: float) -> str:
    """Docker's units.HumanSize: decimal units, four significant digits (772.8kB, 2.1MB, 512B)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{units[index]}"


def bar(current: int, total: int) -> str:
    """The `progress` text: [=====>     ]  1.2MB/3.4MB, as jsonmessage.JSONProgress renders it."""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(_BAR_WIDTH, int(current / total * 100) // 2)
    return f"[{'=' * filled}>{' ' * (_BAR_WIDTH - filled)}] {human_size(current):>8}/{human_size(total)}"


def status(text: str, layer: str | None = None) -> Message:
    message: Message = {"status": text}
    if layer is not None:
        message["progressDetail"] = {}
        message["id"] = layer
    return message


def pulling_from(path: str, target: str) -> Message:
    return {"status": f"Pulling from {path}", "id": target}


def advancing(text: str, layer: str, current: int, total: int) -> Message:
    return {
        "status": text,
        "progressDetail": {"current": current, "total": total},
        "progress": bar(current, total),
        "id": layer,
    }


def error(message: str) -> Message:
    return {"errorDetail": {"message": message}, "error": message}


def short_id(digest: str) -> str:
    """The layer id the CLI shows: the first 12 hex digits of the blob digest."""
    return digest.removeprefix("sha256:")[:12]


class Throttle:
    """Lets a progress update through once it moved by a step (about 1% or 512 kB) or reached the end,
    so a 100 MB layer does not become tens of thousands of messages."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.step = max(1 << 19, total // 100)
        self.last = -1

    def due(self, current: int) -> bool:
        if current == self.last:
            return False  # readers report again at end of file: no news, no message
        if current >= self.total or self.last < 0 or current - self.last >= self.step:
            self.last = current
            return True
        return False
