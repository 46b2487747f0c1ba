"""The engine client against a fake engine on a unix socket: version negotiation, error mapping,
and a connection cut mid-call (dockerd restarting) reported as a temporary error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from shoal.executor.docker.engine import EngineClient, EngineConflict, EngineNotFound, EngineUnreachable

# The client, the paths the fake engine saw, and the API version it claims.
Engine = tuple[EngineClient, list[str], str]


def fake_engine_app(api_version: str, seen: list[str]) -> web.Application:
    async def version(request: web.Request) -> web.Response:
        return web.json_response({"ApiVersion": api_version})

    async def inspect(request: web.Request) -> web.Response:
        seen.append(request.path)
        name = request.match_info["name"]
        if name == "busy":
            return web.json_response({"message": "Conflict. busy"}, status=409)
        return web.json_response({"message": f"No such container: {name}"}, status=404)

    async def cut(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        assert request.transport is not None
        request.transport.close()  # as a dying dockerd does
        return web.Response()

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/{prefix}/containers/{name}/json", inspect)
    app.router.add_post("/{prefix}/containers/{name}/wait", cut)
    return app


@pytest.fixture(params=[("1.41", "unix"), ("1.40", "unix"), ("1.43", "unix"), ("1.41", "tcp")], ids=str)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    api_version, transport = request.param
    seen: list[str] = []
    runner = web.AppRunner(fake_engine_app(api_version, seen))
    await runner.setup()
    if transport == "unix":
        socket_path = str(tmp_path / "engine.sock")
        await web.UnixSite(runner, socket_path).start()
        client = EngineClient(socket_path)
    else:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = EngineClient(f"tcp://127.0.0.1:{port}")
    yield client, seen, api_version
    await client.close()
    await runner.cleanup()


async def test_speaks_the_older_of_its_own_and_the_engine_version(engine: Engine) -> None:
    client, seen, engine_version = engine
    with pytest.raises(EngineNotFound):
        await client.call("GET", "/containers/x/json")
    expected = {"1.40": "/v1.40", "1.41": "/v1.41", "1.43": "/v1.41"}[engine_version]
    assert seen == [f"{expected}/containers/x/json"]


async def test_engine_messages_become_typed_errors(engine: Engine) -> None:
    client, _, _ = engine
    with pytest.raises(EngineNotFound, match="No such container: gone") as missing:
        await client.call("GET", "/containers/gone/json")
    assert missing.value.status == 404
    with pytest.raises(EngineConflict, match=r"Conflict\. busy"):
        await client.call("GET", "/containers/busy/json")


async def test_connection_cut_mid_call_is_a_temporary_error(engine: Engine) -> None:
    client, _, _ = engine
    with pytest.raises(EngineUnreachable) as cut:
        await client.call("POST", "/containers/x/wait", timeout_s=None)
    assert cut.value.temporary


async def test_missing_socket_is_a_temporary_error(tmp_path: Path) -> None:
    client = EngineClient(str(tmp_path / "no-engine.sock"))
    with pytest.raises(EngineUnreachable, match="cannot reach the Docker Engine") as unreachable:
        await client.call("GET", "/info")
    assert unreachable.value.temporary
    await client.close()
