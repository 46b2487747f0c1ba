"""The image store's errors, typed by category so the Engine API maps them to Docker's statuses."""

from __future__ import annotations

from shoal.api.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated, Unavailable, Unknown


class ImageNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")


class DigestMismatch(InvalidArgument):
    """Content that arrived does not hash to the digest it was asked for under."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(InvalidArgument):
    def __init__(self, digest: str, expected: int, actual: int) -> None:
        super().__init__(f"size mismatch for {digest}: expected {expected} bytes, got {actual}")


class LayerVerificationFailed(InvalidArgument):
    """A downloaded layer did not hash to its digest (dockerd's message)."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"filesystem layer verification failed for digest {digest}")


class CorruptLayer(InvalidArgument):
    def __init__(self, digest: str, detail: str) -> None:
        super().__init__(f"failed to register layer: {digest}: {detail}")


class NoMatchingManifest(NotFound):
    def __init__(self, platform: str) -> None:
        super().__init__(f"no matching manifest for {platform} in the manifest list entries")


class StoreFull(Unavailable):
    """The store's disk filled up; what was being written is removed again."""

    def __init__(self, what: str) -> None:
        super().__init__(f"write {what}: no space left on device")


class RegistryError(Unknown):
    """The registry answered with an error or could not be reached."""


class RegistryUnauthorized(Unauthenticated):
    """The registry refused the credentials (or their absence): 401, as dockerd answers /auth."""


class ManifestUnknown(NotFound):
    pass


class UnsupportedMediaType(FailedPrecondition):
    pass
