"""Image references as the docker client adjusts them before a service create or update: a missing tag
becomes :latest, a resolved digest is appended, and the warning when the registry cannot be asked."""

from __future__ import annotations


def _has_tag(image: str) -> bool:
    last = image.rsplit("/", 1)[-1]
    return ":" in last


def image_with_tag(image: str) -> str:
    if "@" in image or _has_tag(image):
        return image
    return f"{image}:latest"


def image_with_digest(image: str, digest: str) -> str:
    if "@" in image:
        return image
    return f"{image}@{digest}"


def digest_warning(image: str) -> str:
    return (f"image {image} could not be accessed on a registry to record\nits digest. Each node will access "
            f"{image} independently,\npossibly leading to different nodes running different\nversions of the image.\n")
