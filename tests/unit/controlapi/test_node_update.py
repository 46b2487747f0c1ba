"""`docker node update` values as dockerd reads them: any letter case, Docker's texts for the rest."""

from __future__ import annotations

import pytest

from shoal.api import errors
from shoal.api.objects import NODES
from shoal.controlapi.nodes import NodeControl
from shoal.store.memory import MemoryStore
from shoal.testing.clock import FakeClock
from shoal.testing.store_harness import InstantProposer, node_object


@pytest.fixture
async def store() -> MemoryStore:
    store = MemoryStore(InstantProposer(), FakeClock())
    await store.update(lambda tx: tx.create(NODES, node_object("n1", role="manager")))
    return store


def only_node(store: MemoryStore) -> dict[str, object]:
    (node,) = store.view().objects(NODES)
    return dict(node)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("Availability", "bogus", 'invalid Availability: "bogus"'),
    ("Role", "boss", 'invalid Role: "boss"'),
])
async def test_a_bad_value_gets_dockerds_text_and_changes_nothing(
        store: MemoryStore, field: str, value: str, message: str) -> None:
    before = only_node(store)
    spec = {"Role": "manager", "Availability": "active", field: value}
    with pytest.raises(errors.InvalidArgument) as caught:
        await NodeControl(store).update(str(before["ID"]), 1, spec)
    assert str(caught.value) == message
    assert only_node(store) == before


async def test_values_are_read_in_any_case(store: MemoryStore) -> None:
    node = only_node(store)
    version = int(node["Version"]["Index"])  # type: ignore[index]
    await NodeControl(store).update(str(node["ID"]), version, {"Role": "Manager", "Availability": "DRAIN"})
    assert only_node(store)["Spec"] == {"Role": "manager", "Availability": "drain", "Labels": {}}
