"""`docker rmi` as dockerd decides it: untag a name, delete the image with its last name, and
refuse with Docker's conflict messages while a task's container uses it (unless forced, and never
for a running one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shoal.api.errors import Conflict


@dataclass(frozen=True)
class ImageUser:
    """A container (a task's) that uses an image."""

    container_id: str
    running: bool


InUse = Callable[[str], list[ImageUser]]


def no_users(_image_id: str) -> list[ImageUser]:
    return []


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def check_untag_last(name: str, image_id: str, users: list[ImageUser], force: bool) -> None:
    """Removing the last name of an image a container uses (dockerd: must force; running: cannot)."""
    running = [u for u in users if u.running]
    if running and force:
        raise Conflict(f"conflict: unable to delete {short(image_id)} (cannot be forced) - image is being used "
                       f"by running container {short(running[0].container_id)}")
    if users and not force:
        raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) - container '
                       f"{short(users[0].container_id)} is using its referenced image {short(image_id)}")


def check_delete_by_id(image_id: str, names: list[str], users: list[ImageUser], force: bool) -> None:
    """Deleting by id: refused when several repositories name it (unless forced) or a container uses it."""
    repos = {name.rsplit("@", 1)[0].rsplit(":", 1)[0] if "@" in name else name.rsplit(":", 1)[0] for name in names}
    if len(repos) > 1 and not force:
        raise Conflict(f"conflict: unable to delete {short(image_id)} (must be forced) - image is referenced "
                       f"in multiple repositories")
    running = [u for u in users if u.running]
    if running:
        how = "cannot be forced" if force else "must be forced"
        raise Conflict(f"conflict: unable to delete {short(image_id)} ({how}) - image is being used by running "
                       f"container {short(running[0].container_id)}")
    if users and not force:
        raise Conflict(f"conflict: unable to delete {short(image_id)} (must be forced) - image is being used by "
                       f"stopped container {short(users[0].container_id)}")
