from __future__ import annotations

import pytest

from shoal.network.mesh import factory
from shoal.network.mesh.commands import IptablesCommands
from shoal.network.mesh.protocol import MeshError


@pytest.fixture
def no_iptables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(IptablesCommands, "available", staticmethod(lambda: False))
    monkeypatch.setattr(factory.os, "geteuid", lambda: 0)


def test_missing_iptables_is_the_reason_given(no_iptables: None) -> None:
    assert factory.kernel_path_unavailable() == "iptables-save/iptables-restore not found"


def test_not_being_root_is_the_reason_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory.os, "geteuid", lambda: 1000)
    assert factory.kernel_path_unavailable() == "not running as root"


async def test_auto_falls_back_to_the_userspace_proxy(no_iptables: None) -> None:
    mesh = await factory.open_mesh("factorytest")
    assert mesh.kind == "userspace"
    await mesh.close()


async def test_insisting_on_the_kernel_path_raises_instead(no_iptables: None) -> None:
    with pytest.raises(MeshError, match="iptables-save/iptables-restore not found"):
        await factory.open_mesh("factorytest", prefer="kernel")
