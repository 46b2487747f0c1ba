from __future__ import annotations

import pytest

from shoal.network.mesh.commands import IptablesCommands
from shoal.network.mesh.factory import kernel_path_unavailable, open_mesh
from shoal.network.mesh.kernel import KernelMesh
from shoal.network.mesh.state import Backend, PublishedPort


async def test_auto_takes_the_kernel_path_where_it_works() -> None:
    reason = kernel_path_unavailable()
    if reason:
        pytest.skip(reason)
    mesh = await open_mesh("openmeshtest")
    try:
        assert mesh.kind == "kernel"
    finally:
        await mesh.close(keep_kernel_rules=False)


async def test_userspace_can_be_chosen_explicitly() -> None:
    mesh = await open_mesh("openmeshtest", prefer="userspace")
    assert mesh.kind == "userspace"
    await mesh.close()


async def test_falling_back_to_userspace_removes_kernel_rules_of_an_earlier_run() -> None:
    reason = kernel_path_unavailable()
    if reason:
        pytest.skip(reason)
    earlier = KernelMesh("openmeshstale")
    await earlier.start()
    await earlier.apply({PublishedPort(29999): [Backend("10.255.0.9", 80)]})
    proxy = await open_mesh("openmeshstale", prefer="userspace")
    await proxy.close()
    saved = await IptablesCommands().save("nat") + await IptablesCommands().save("filter")
    assert earlier.names.prefix not in saved
