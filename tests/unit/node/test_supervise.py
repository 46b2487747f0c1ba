"""The leader's loops run exactly while this manager leads, fresh each term, and a failing loop is
restarted with backoff (on a FakeClock)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from shoal.node.supervise import Loops, run_while_leading, supervised
from shoal.testing.clock import FakeClock


async def wait_for(condition: object, what: str) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(poll(), 5)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Leadership:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bool] = asyncio.Queue()

    async def changes(self) -> AsyncIterator[bool]:
        while True:
            yield await self.queue.get()


async def test_loops_run_only_while_leading_and_start_fresh_each_term() -> None:
    clock = FakeClock()
    running: set[str] = set()
    terms: list[int] = []

    def loops() -> Loops:
        terms.append(len(terms) + 1)

        async def loop(name: str) -> None:
            running.add(name)
            try:
                await asyncio.Event().wait()
            finally:
                running.discard(name)

        return [(name, lambda name=name: loop(name)) for name in ("scheduler", "dispatcher")]  # type: ignore[misc]

    leadership = Leadership()
    follower = asyncio.create_task(run_while_leading(leadership.changes(), loops, clock))
    leadership.queue.put_nowait(True)
    await wait_for(lambda: running == {"scheduler", "dispatcher"}, "the loops to start")
    leadership.queue.put_nowait(True)  # a repeated notice starts nothing twice
    leadership.queue.put_nowait(False)
    await wait_for(lambda: not running, "the loops to stop")
    leadership.queue.put_nowait(True)
    await wait_for(lambda: running == {"scheduler", "dispatcher"}, "the loops of the second term")
    assert terms == [1, 2]
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    assert not running


async def test_a_failing_loop_is_restarted_with_growing_backoff() -> None:
    clock = FakeClock()
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(clock.monotonic())
        raise RuntimeError("boom")

    task = asyncio.create_task(supervised("flaky", flaky, clock))
    await wait_for(lambda: len(starts) == 1, "the first start")
    while len(starts) < 4:
        await wait_for(lambda: clock.sleepers == 1, "the loop to sleep out its backoff")
        clock.advance(0.25)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps == [0.5, 1.0, 2.0]
