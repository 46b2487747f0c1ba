"""Finding a task's image in the engine's local store. shoal's docker executor never pulls (nodes
may have no registry): a missing image rejects the task at once with a message that says so."""

from __future__ import annotations

from shoal.executor.docker.engine import EngineClient, EngineNotFound
from shoal.executor.errors import InvalidTaskSpec


class ImageNotFound(InvalidTaskSpec):
    def __init__(self, image: str) -> None:
        super().__init__(
            f"No such image: {image} (the docker executor does not pull images: load or build it on this node first)"
        )
        self.image = image


def with_default_tag(image: str) -> str:
    """`name` → `name:latest`, as Swarm names a task's image (a digest or a tag is kept as it is)."""
    last_part = image.rsplit("/", 1)[-1]
    if "@" in image or ":" in last_part:
        return image
    return f"{image}:latest"


def reference_candidates(image: str) -> list[str]:
    """The reference as given (with its default tag), then without a pinned digest: `docker service
    create` pins `name:tag@sha256:…` from a registry, and a locally built or imported image has no such
    digest."""
    candidates = [with_default_tag(image)]
    name, at, _digest = image.partition("@")
    last_part = name.rsplit("/", 1)[-1]
    if at and ":" in last_part:
        candidates.append(name)
    return candidates


async def resolve_local_image(engine: EngineClient, image: str) -> str:
    """The first candidate reference the engine knows, to be used in the create call."""
    if not image:
        raise InvalidTaskSpec("ContainerSpec: image reference must be provided")
    for candidate in reference_candidates(image):
        try:
            await engine.call("GET", f"/images/{candidate}/json")
        except EngineNotFound:
            continue
        return candidate
    raise ImageNotFound(image)
