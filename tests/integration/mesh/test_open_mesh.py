from __future__ import annotations

import pytest

from shoal.network.mesh.factory import kernel_path_unavailable, open_mesh


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
