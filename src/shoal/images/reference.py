"""Image references as Docker parses them: [domain[:port]/]path[:tag][@digest], normalised to
docker.io/library/… the way the docker CLI and dockerd do. Anything else is `invalid reference format`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shoal.api.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
# The host dockerd really talks to for docker.io names.
DOCKER_HUB_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"
INVALID = "invalid reference format"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAME_MAX = 255


class InvalidReference(InvalidArgument):
    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{INVALID}: {detail}" if detail else INVALID)


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The fully qualified repository, e.g. docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The repository as `docker images` prints it: busybox, not docker.io/library/busybox."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix("library/")

    @property
    def registry_host(self) -> str:
        return DOCKER_HUB_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        text = self.familiar_repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    @property
    def pull_target(self) -> str:
        """What the registry's manifest endpoint is asked for: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return DEFAULT_DOMAIN, name


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise a reference; `default_tag` adds :latest when neither tag nor digest is given."""
    match = _REFERENCE.match(text)
    if match is None:
        if text and text.lower() != text and _REFERENCE.match(text.lower()):
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference()
    name = match["name"]
    if len(name) > _NAME_MAX:
        raise InvalidReference("repository name must not be more than 255 characters")
    domain, path = _split_domain(name)
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    digest = match["digest"]
    if digest is not None and digest.startswith("sha256:") and not _SHA256.match(digest):
        raise InvalidReference()
    tag = match["tag"]
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def is_image_id(text: str) -> bool:
    """A full (sha256:…) or short hex image id, as `docker rmi 3f57d9401f8d` accepts."""
    hexpart = text.removeprefix("sha256:")
    return bool(re.fullmatch(r"[0-9a-f]{4,64}", hexpart)) and (text.startswith("sha256:") or len(hexpart) >= 4)


def valid_digest(text: str) -> bool:
    return bool(_SHA256.match(text))
