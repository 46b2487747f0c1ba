"""Round-robin choice of backends for the userspace proxy (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from shoal.network.mesh.state import Backend


class RoundRobin:
    """Hands each new connection the backends to try, starting one further along each time; the
    rest of the list is the order to fall back in when a backend refuses."""

    def __init__(self, backends: Sequence[Backend] = ()) -> None:
        self._backends: tuple[Backend, ...] = tuple(backends)
        self._next = 0

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self._backends

    def set_backends(self, backends: Sequence[Backend]) -> None:
        """Replace the set; the turn continues from the backend that was next, if it stays."""
        new = tuple(backends)
        upcoming = self._backends[self._next % len(self._backends)] if self._backends else None
        self._backends = new
        self._next = new.index(upcoming) if upcoming in new else 0

    def attempt_order(self) -> list[Backend]:
        """Backends for one new connection, first choice first; advances the turn."""
        if not self._backends:
            return []
        start = self._next % len(self._backends)
        self._next = (start + 1) % len(self._backends)
        return list(self._backends[start:] + self._backends[:start])
