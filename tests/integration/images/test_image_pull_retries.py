"""Retries: a registry that answers 503 once and then cuts a blob off half-way still gives a complete,
verified image; one that keeps failing gives a clear error and leaves nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from image_fixtures import Registries, store_files

from shoal.base.clock import SystemClock
from shoal.images.errors import RegistryError
from shoal.images.service import ImageService


class NoWaitClock(SystemClock):
    """Backoff delays recorded, not waited out: the test is about what is retried, not when."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    return ImageService(tmp_path / "images", clock=NoWaitClock())


_HOP_HEADERS = {"content-type", "docker-content-digest", "location", "www-authenticate"}


class FlakyProxy:
    """Forwards to the registry; GETs of the blob named in `plan` fail as planned, in order: "503"
    answers Service Unavailable, "cut" sends half the body and drops the connection."""

    def __init__(self, upstream: str, blob: str, plan: list[str]) -> None:
        self.upstream = upstream
        self.blob = blob
        self.plan = plan
        self.blob_gets = 0
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        async with aiohttp.ClientSession() as session, session.request(
                request.method, self.upstream + request.path_qs, allow_redirects=False,
                headers={"Accept": request.headers.get("Accept", "*/*")}) as answer:
            body = await answer.read()
            headers = {k: v for k, v in answer.headers.items() if k.lower() in _HOP_HEADERS}
        if request.method == "GET" and request.path.endswith(f"/blobs/{self.blob}"):
            self.blob_gets += 1
            step = self.plan.pop(0) if self.plan else "ok"
            if step == "503":
                return web.Response(status=503, text="try later")
            if step == "cut":
                response = web.StreamResponse(status=200, headers={**headers, "Content-Length": str(len(body))})
                await response.prepare(request)
                await response.write(body[: len(body) // 2])
                assert request.transport is not None
                request.transport.close()
                return response
        return web.Response(status=answer.status, body=body, headers=headers)


@pytest.fixture
async def proxy(registries: Registries) -> AsyncIterator[FlakyProxy]:
    flaky = FlakyProxy(registries.open.base_url, registries.images.app_v1.layers[1].digest, [])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", flaky.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    flaky.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    yield flaky
    await runner.cleanup()


async def test_a_503_and_a_cut_blob_are_retried(proxy: FlakyProxy, registries: Registries,
                                                service: ImageService) -> None:
    proxy.plan[:] = ["503", "cut"]
    resolved = await service.ensure(f"127.0.0.1:{proxy.port}/test/app:v1")
    assert resolved.id == registries.images.app_v1.id
    assert proxy.blob_gets == 3
    assert isinstance(service.clock, NoWaitClock) and len(service.clock.delays) == 2
    assert (resolved.layers[1] / "app/version").read_text() == "1\n"


async def test_a_registry_that_keeps_failing_gives_up_cleanly(proxy: FlakyProxy, service: ImageService) -> None:
    proxy.plan[:] = ["503"] * 20
    with pytest.raises(RegistryError, match="503"):
        await service.ensure(f"127.0.0.1:{proxy.port}/test/app:v1")
    assert service.store.meta.refs == {}
    assert store_files(service.store.root) == {"blobs": set(), "snapshots": set(), "ingest": set(),
                                               "staging": set()}
