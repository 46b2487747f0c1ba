"""Writes a backend's log messages as dockerd does: chunked, no Content-Type, stdcopy frames unless
the workload has a TTY, headers flushed before the first line, errors as a system-error frame."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from shoal.engineapi.backend import STDERR, STDOUT, SYSTEM_ERROR, LogMessage, LogOptions
from shoal.engineapi.iterclose import close_iterator
from shoal.engineapi.responses import BareStreamResponse
from shoal.engineapi.stdcopy import frame, log_line

log = logging.getLogger(__name__)


async def write_log_stream(
    request: web.Request,
    messages: AsyncIterator[LogMessage],
    options: LogOptions,
    *,
    multiplexed: bool,
) -> web.StreamResponse:
    response = BareStreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for message in messages:
            wanted = options.stdout if message.stream == STDOUT else options.stderr
            if message.stream not in (STDOUT, STDERR) or not wanted:
                continue
            line = log_line(message, timestamps=options.timestamps, details=options.details)
            await response.write(frame(message.stream, line) if multiplexed else line)
    except (ConnectionError, OSError):
        raise
    except Exception as exc:  # the status line has gone out; tell the client inside the stream
        log.warning("log stream failed", exc_info=exc)
        text = f"Error grabbing logs: {exc}\n".encode()
        await response.write(frame(SYSTEM_ERROR, text) if multiplexed else text)
    finally:
        await close_iterator(messages)
    await response.write_eof()
    return response


def has_tty(container_spec_holder: dict[str, object], *path: str) -> bool:
    """Follow `path` through nested objects to a TTY flag; absent means no TTY."""
    node: object = container_spec_holder
    for key in path:
        if not isinstance(node, dict):
            return False
        node = node.get(key)
    return node is True
