"""Secret calls: create, list, inspect, label updates and removal (controlapi.payloads has the rules).
A secret's data goes into the replicated store, which is encrypted at rest, and is never returned."""

from __future__ import annotations

from shoal.controlapi.payloads import SECRET, PayloadControl
from shoal.store.memory import MemoryStore


class SecretControl(PayloadControl):
    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store, SECRET)
