"""Which ContainerSpec options the process executor can honour. Tasks run in the host's filesystem
with the daemon's capabilities, so capability and privilege options
cannot be applied; the task is rejected naming them rather than run without them."""

from __future__ import annotations

from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.taskoptions import TaskOptions

# field → why the process executor cannot apply it
_NEVER = {
    "CapabilityAdd": "tasks run with the daemon's capabilities",
    "CapabilityDrop": "tasks run with the daemon's capabilities",
    "Privileges.NoNewPrivileges": "tasks run with the daemon's privileges",
    "Privileges.Seccomp": "seccomp profiles need a container runtime",
    "Privileges.SELinuxContext": "SELinux labels need a container runtime",
    "Privileges.CredentialSpec": "credential specs are for Windows containers",
}
# fields that need the task's own namespaces (its /etc files, its pid namespace)
_NEEDS_ISOLATION = (
    "DNSConfig.Nameservers", "DNSConfig.Search", "DNSConfig.Options", "Hosts", "Init", "Sysctls", "ReadOnly",
    "Mounts",
)


def unsupported(options: TaskOptions, *, isolated: bool) -> list[str]:
    """One reason per requested option this executor cannot apply (empty: all can be)."""
    reasons = []
    for field, flag in options.requested():
        if field in _NEVER:
            reasons.append(f"{flag} ({field}): {_NEVER[field]}")
        elif field in _NEEDS_ISOLATION and not isolated:
            reasons.append(f"{flag} ({field}): tasks run without namespaces of their own here")
    return reasons


def check_supported(options: TaskOptions, *, isolated: bool) -> None:
    reasons = unsupported(options, isolated=isolated)
    if reasons:
        raise InvalidTaskSpec(
            "process executor cannot apply " + "; ".join(reasons) + " (use the oci executor)"
        )
