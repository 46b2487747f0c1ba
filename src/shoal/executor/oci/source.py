"""Where the oci executor gets images: anything with `ensure(ref, auth)` (the node's ImageService
pulls what is missing). LocalImageSource serves images built from directories, for tests and for
hosts without an image store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from shoal.executor.errors import ExecutorError
from shoal.images.resolved import ResolvedImage


@runtime_checkable
class ImageSource(Protocol):
    async def ensure(self, ref: str, auth: str | Mapping[str, Any] | None) -> ResolvedImage:
        """The image, pulled first if missing. `auth`: the service's registry auth (X-Registry-Auth:
        base64 JSON, or decoded), or None. Raises a ShoalError saying why it cannot be had."""
        ...


class ImageNotAvailable(ExecutorError):
    """As dockerd's message when a task's image cannot be had."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")


class LocalImageSource:
    """A fixed set of images by reference (no pulls)."""

    def __init__(self, images: Mapping[str, ResolvedImage] | None = None) -> None:
        self._images = dict(images or {})

    def add(self, ref: str, image: ResolvedImage) -> None:
        self._images[ref] = image

    async def ensure(self, ref: str, auth: str | Mapping[str, Any] | None) -> ResolvedImage:
        try:
            return self._images[ref]
        except KeyError:
            raise ImageNotAvailable(ref) from None
