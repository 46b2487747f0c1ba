"""Docker-shaped JSON for images: ImageSummary (GET /images/json), the inspect body (GET
/images/{name}/json, `docker image inspect`) and history entries, built from the store's records."""

from __future__ import annotations

from typing import Any

from shoal.base.clock import parse_rfc3339
from shoal.images.metadata import ImageRecord
from shoal.images.reference import parse
from shoal.images.store import ImageStore

NONE_TAG = "<none>:<none>"
NONE_DIGEST = "<none>@<none>"


def repo_tags(store: ImageStore, image_id: str) -> list[str]:
    return [parse(name).familiar for name in store.meta.names_of(image_id) if "@" not in name]


def repo_digests(record: ImageRecord) -> list[str]:
    return sorted({parse(name).familiar for name in record.repo_digests})


def image_size(store: ImageStore, config: dict[str, Any]) -> int:
    return sum(store.snapshots.size(d) for d in config.get("rootfs", {}).get("diff_ids", []))


def unix_time(text: str) -> int:
    try:
        return int(parse_rfc3339(text).timestamp())
    except (ValueError, TypeError):
        return 0


def summary(store: ImageStore, record: ImageRecord) -> dict[str, Any]:
    config = store.config(record)
    size = image_size(store, config)
    tags = repo_tags(store, record.id)
    digests = repo_digests(record)
    return {
        "Containers": -1,
        "Created": unix_time(str(config.get("created", ""))),
        "Id": record.id,
        "Labels": (config.get("config") or {}).get("Labels"),
        "ParentId": "",
        "RepoDigests": digests or ([] if tags else [NONE_DIGEST]),
        "RepoTags": tags or [NONE_TAG],
        "SharedSize": -1,
        "Size": size,
        "VirtualSize": size,
    }


def inspect(store: ImageStore, record: ImageRecord) -> dict[str, Any]:
    config = store.config(record)
    size = image_size(store, config)
    diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
    lower = [str(store.snapshots.path(d)) for d in reversed(diff_ids)]
    body: dict[str, Any] = {
        "Id": record.id,
        "RepoTags": repo_tags(store, record.id),
        "RepoDigests": repo_digests(record),
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": config.get("created", ""),
        "Container": config.get("container", ""),
        "ContainerConfig": config.get("container_config") or {},
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": config.get("config"),
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": size,
        "VirtualSize": size,
        "GraphDriver": {"Name": "overlay2", "Data": {"LowerDir": ":".join(lower)} if lower else {}},
        "RootFS": {"Type": "layers", "Layers": diff_ids},
        "Metadata": {"LastTagTime": record.last_tag_time or "0001-01-01T00:00:00Z"},
    }
    if config.get("variant"):
        body["Variant"] = config["variant"]
    return body


def history(store: ImageStore, record: ImageRecord) -> list[dict[str, Any]]:
    """`docker history`: newest first; entries that made a layer carry its size; only the newest
    entry carries the image id and tags, the others say <missing> as dockerd does for pulled images."""
    config = store.config(record)
    diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
    entries = config.get("history") or [{} for _ in diff_ids]
    rows: list[dict[str, Any]] = []
    layer = 0
    for entry in entries:
        size = 0
        if not entry.get("empty_layer") and layer < len(diff_ids):
            size = store.snapshots.size(diff_ids[layer])
            layer += 1
        rows.append({
            "Id": "<missing>",
            "Created": unix_time(str(entry.get("created", ""))),
            "CreatedBy": entry.get("created_by", ""),
            "Tags": None,
            "Size": size,
            "Comment": entry.get("comment", ""),
        })
    rows.reverse()
    if rows:
        rows[0]["Id"] = record.id
        rows[0]["Tags"] = repo_tags(store, record.id) or None
    return rows
