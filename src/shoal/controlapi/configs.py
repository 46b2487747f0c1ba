"""Config calls: as secrets (controlapi.payloads), except that the API returns a config's data and
that its payload may be a template (`Templating: {"Name": "golang"}`) the agent renders per task."""

from __future__ import annotations

from shoal.controlapi.payloads import CONFIG, PayloadControl
from shoal.store.memory import MemoryStore


class ConfigControl(PayloadControl):
    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store, CONFIG)
