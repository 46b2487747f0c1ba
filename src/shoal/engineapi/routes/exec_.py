"""/exec: start (hijacked raw stream), inspect, resize."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from shoal.engineapi.backend import STDOUT, ExecStartOptions, ExecStream
from shoal.engineapi.constants import RAW_STREAM_CONTENT_TYPE
from shoal.engineapi.gojson import decode_object
from shoal.engineapi.hijack import HijackedConnection, RawStreamResponse, hijack
from shoal.engineapi.iterclose import close_iterator
from shoal.engineapi.query import int_param
from shoal.engineapi.responses import empty_ok, json_response
from shoal.engineapi.routing import RouteTable, backend_of, streaming
from shoal.engineapi.stdcopy import frame

log = logging.getLogger(__name__)

DOCKER_PY_FIRST_OUTPUT_DELAY = 0.1
"""docker-py reads the 101 header through a buffered reader and then reads frames from the raw
socket, so output that arrives together with the header is lost. Against dockerd, process start-up
(~100 ms) keeps them apart; for docker-py we hold the first output back as long."""


def _holds_first_output(request: web.Request) -> bool:
    return request.headers.get("User-Agent", "").startswith("docker-sdk-python/")


async def _pump_stdin(connection: HijackedConnection, session: ExecStream) -> None:
    """Client bytes to the process until the client half-closes; a process that stops reading
    (it exited, or never attached stdin) ends the pump, not the output stream."""
    try:
        while (data := await connection.read()) is not None:
            await session.write_stdin(data)
        await session.close_stdin()
    except Exception as exc:
        log.debug("exec stdin closed: %s", exc)


@streaming
async def start(request: web.Request) -> web.StreamResponse:
    body = decode_object(await request.read(), "types.ExecStartCheck")
    options = ExecStartOptions(detach=body.get("Detach") is True, tty=body.get("Tty") is True)
    session = await backend_of(request).exec_start(request.match_info["id"], options)
    if options.detach:
        return empty_ok()

    connection = hijack(request)
    if "Upgrade" in request.headers:
        response = RawStreamResponse(status=101, reason="UPGRADED")
        response.headers["Connection"] = "Upgrade"
        response.headers["Upgrade"] = "tcp"
    else:
        response = RawStreamResponse(status=200)
    response.headers["Content-Type"] = RAW_STREAM_CONTENT_TYPE
    response.force_close()  # the exec owns the connection; closing it marks the end of output
    await response.prepare(request)

    pump = asyncio.create_task(_pump_stdin(connection, session))
    output = session.output()
    try:
        if _holds_first_output(request):
            await asyncio.sleep(DOCKER_PY_FIRST_OUTPUT_DELAY)
        async for stream, data in output:
            await response.write(data if options.tty else frame(stream, data))
    except (ConnectionError, OSError):
        raise
    except Exception as exc:  # the 101 is out: report on the stream, as dockerd does
        log.warning("exec %s failed", request.match_info["id"], exc_info=exc)
        text = f"{exc}\r\n".encode()
        await response.write(text if options.tty else frame(STDOUT, text))
    finally:
        await close_iterator(output)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    await response.write_eof()
    return response


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(await backend_of(request).exec_inspect(request.match_info["id"]))


async def resize(request: web.Request) -> web.StreamResponse:
    height = int_param(request.query, "h", 0) or 0
    width = int_param(request.query, "w", 0) or 0
    await backend_of(request).exec_resize(request.match_info["id"], height, width)
    return empty_ok()


def register(routes: RouteTable) -> None:
    routes.post("/exec/{id}/start", start)
    routes.get("/exec/{id}/json", inspect)
    routes.post("/exec/{id}/resize", resize)
