"""Once: one job per key; waiters share its result or error; a cancelled owner does not fail them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shoal.images.once import Once


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition another task makes true, up to a deadline."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0)


async def test_waiters_share_one_run_and_its_result_or_error() -> None:
    once: Once[int] = Once()
    release = asyncio.Event()
    runs = 0

    async def job() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 7

    first = asyncio.create_task(once.run("k", job))
    await until(lambda: once.running("k"))
    second = asyncio.create_task(once.run("k", job))
    await until(lambda: once.waiters("k") == 1)
    release.set()
    assert await asyncio.gather(first, second) == [7, 7] and runs == 1
    assert not once.running("k") and once.waiters("k") == 0

    fail = asyncio.Event()

    async def failing() -> int:
        await fail.wait()
        raise ValueError("boom")

    owner = asyncio.create_task(once.run("e", failing))
    await until(lambda: once.running("e"))
    waiter = asyncio.create_task(once.run("e", job))
    await until(lambda: once.waiters("e") == 1)
    fail.set()
    for task in (owner, waiter):
        with pytest.raises(ValueError, match="boom"):
            await task
    assert runs == 1


async def test_a_cancelled_owner_hands_the_job_to_a_waiter() -> None:
    once: Once[str] = Once()
    never = asyncio.Event()

    async def stuck() -> str:
        await never.wait()
        return "owner"

    async def quick() -> str:
        return "waiter ran it"

    owner = asyncio.create_task(once.run("k", stuck))
    await until(lambda: once.running("k"))
    waiter = asyncio.create_task(once.run("k", quick))
    await until(lambda: once.waiters("k") == 1)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert await waiter == "waiter ran it"
