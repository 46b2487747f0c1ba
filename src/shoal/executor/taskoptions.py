"""The ContainerSpec fields beyond TaskRuntime's (mounts, read-only root, capabilities, ulimits, DNS,
extra hosts, groups, sysctls, init), parsed from the task and validated with Docker's messages. Pure:
no I/O except `check_bind_sources`, which looks at the node's filesystem. Each executor then applies
what it can and rejects the rest by name (`requested()`), so no field is silently ignored."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.executor.base import TaskRuntime
from shoal.executor.errors import InvalidTaskSpec

MOUNT_TYPES = ("bind", "volume", "tmpfs")
# setrlimit names Docker accepts for --ulimit
ULIMIT_NAMES = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
    "rtprio", "rttime", "sigpending", "stack",
)
# sysctls a container may set because they are namespaced (Docker's rule: IPC and network ones)
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
# the capability names Linux knows (capability.h); Docker refuses others
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)


@dataclass(frozen=True)
class MountSpec:
    type: str  # bind, volume, tmpfs
    source: str
    target: str
    read_only: bool = False
    tmpfs_size: int = 0  # bytes; 0: the kernel's default
    tmpfs_mode: int = 0  # 0: 1777, as Docker
    propagation: str = ""  # bind only: rprivate (default), private, rshared, ...

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "source": self.source, "target": self.target, "read_only": self.read_only,
                "tmpfs_size": self.tmpfs_size, "tmpfs_mode": self.tmpfs_mode, "propagation": self.propagation}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MountSpec:
        return cls(str(data["type"]), str(data["source"]), str(data["target"]), bool(data["read_only"]),
                   int(data["tmpfs_size"]), int(data["tmpfs_mode"]), str(data.get("propagation", "")))


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class TaskOptions:
    mounts: tuple[MountSpec, ...] = ()
    read_only: bool = False
    cap_add: tuple[str, ...] = ()  # CAP_ names, upper case; "ALL" allowed
    cap_drop: tuple[str, ...] = ()
    ulimits: tuple[Ulimit, ...] = ()
    dns_nameservers: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (address, names)
    groups: tuple[str, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    init: bool = False
    no_new_privileges: bool = False
    seccomp_mode: str = ""  # "" (the default profile), "unconfined" or "custom"
    seccomp_profile: str = ""  # custom profile JSON, Docker's format
    selinux_label: bool = False  # SELinux labels asked for
    credential_spec: bool = False  # a credential spec (gMSA: Windows containers only)

    def requested(self) -> list[tuple[str, str]]:
        """(field, the docker CLI flag that sets it) for each field set to other than its default."""
        flags = [
            ("Mounts", "--mount", bool(self.mounts)),
            ("ReadOnly", "--read-only", self.read_only),
            ("CapabilityAdd", "--cap-add", bool(self.cap_add)),
            ("CapabilityDrop", "--cap-drop", bool(self.cap_drop)),
            ("Ulimits", "--ulimit", bool(self.ulimits)),
            ("DNSConfig.Nameservers", "--dns", bool(self.dns_nameservers)),
            ("DNSConfig.Search", "--dns-search", bool(self.dns_search)),
            ("DNSConfig.Options", "--dns-option", bool(self.dns_options)),
            ("Hosts", "--host", bool(self.extra_hosts)),
            ("Groups", "--group", bool(self.groups)),
            ("Sysctls", "--sysctl", bool(self.sysctls)),
            ("Init", "--init", self.init),
            ("Privileges.NoNewPrivileges", "no-new-privileges", self.no_new_privileges),
            ("Privileges.Seccomp", "seccomp", bool(self.seccomp_mode)),
            ("Privileges.SELinuxContext", "SELinux labels", self.selinux_label),
            ("Privileges.CredentialSpec", "--credential-spec", self.credential_spec),
        ]
        return [(name, flag) for name, flag, on in flags if on]

    def to_json(self) -> dict[str, Any]:
        return {
            "mounts": [m.to_json() for m in self.mounts],
            "read_only": self.read_only,
            "cap_add": list(self.cap_add),
            "cap_drop": list(self.cap_drop),
            "ulimits": [[u.name, u.soft, u.hard] for u in self.ulimits],
            "dns_nameservers": list(self.dns_nameservers),
            "dns_search": list(self.dns_search),
            "dns_options": list(self.dns_options),
            "extra_hosts": [[address, list(names)] for address, names in self.extra_hosts],
            "groups": list(self.groups),
            "sysctls": [list(kv) for kv in self.sysctls],
            "init": self.init,
            "no_new_privileges": self.no_new_privileges,
            "seccomp_mode": self.seccomp_mode,
            "seccomp_profile": self.seccomp_profile,
            "selinux_label": self.selinux_label,
            "credential_spec": self.credential_spec,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskOptions:
        return cls(
            mounts=tuple(MountSpec.from_json(m) for m in data.get("mounts") or ()),
            read_only=bool(data.get("read_only")),
            cap_add=tuple(data.get("cap_add") or ()),
            cap_drop=tuple(data.get("cap_drop") or ()),
            ulimits=tuple(Ulimit(str(n), int(s), int(h)) for n, s, h in data.get("ulimits") or ()),
            dns_nameservers=tuple(data.get("dns_nameservers") or ()),
            dns_search=tuple(data.get("dns_search") or ()),
            dns_options=tuple(data.get("dns_options") or ()),
            extra_hosts=tuple((str(a), tuple(n)) for a, n in data.get("extra_hosts") or ()),
            groups=tuple(data.get("groups") or ()),
            sysctls=tuple((str(k), str(v)) for k, v in data.get("sysctls") or ()),
            init=bool(data.get("init")),
            no_new_privileges=bool(data.get("no_new_privileges")),
            seccomp_mode=str(data.get("seccomp_mode") or ""),
            seccomp_profile=str(data.get("seccomp_profile") or ""),
            selinux_label=bool(data.get("selinux_label")),
            credential_spec=bool(data.get("credential_spec")),
        )


def container_spec(runtime: TaskRuntime) -> Mapping[str, Any]:
    spec = runtime.raw_task.get("Spec") or {}
    return spec.get("ContainerSpec") or {}


def task_options(runtime: TaskRuntime) -> TaskOptions:
    """The task's options, validated; InvalidTaskSpec with Docker's message for the first bad one."""
    return parse_options(container_spec(runtime))


def parse_options(spec: Mapping[str, Any]) -> TaskOptions:
    dns = spec.get("DNSConfig") or {}
    return TaskOptions(
        mounts=tuple(parse_mount(m) for m in spec.get("Mounts") or ()),
        read_only=bool(spec.get("ReadOnly")),
        cap_add=tuple(normalize_capability(c) for c in spec.get("CapabilityAdd") or ()),
        cap_drop=tuple(normalize_capability(c) for c in spec.get("CapabilityDrop") or ()),
        ulimits=tuple(parse_ulimit(u) for u in spec.get("Ulimits") or ()),
        dns_nameservers=tuple(_nameserver(s) for s in dns.get("Nameservers") or ()),
        dns_search=tuple(str(s) for s in dns.get("Search") or ()),
        dns_options=tuple(str(s) for s in dns.get("Options") or ()),
        extra_hosts=tuple(parse_host_entry(h) for h in spec.get("Hosts") or ()),
        groups=tuple(str(g) for g in spec.get("Groups") or ()),
        sysctls=tuple(check_sysctl(str(k), str(v)) for k, v in sorted((spec.get("Sysctls") or {}).items())),
        init=bool(spec.get("Init")),
        **_privileges(spec.get("Privileges") or {}),
    )


def _privileges(raw: Mapping[str, Any]) -> dict[str, Any]:
    seccomp = raw.get("Seccomp") or {}
    mode = str(seccomp.get("Mode") or "").lower()
    if mode == "default":
        mode = ""
    if mode not in ("", "unconfined", "custom"):
        raise InvalidTaskSpec(f"invalid seccomp mode: {seccomp.get('Mode')}")
    profile = seccomp.get("Profile") or ""
    if isinstance(profile, bytes | bytearray):
        profile = profile.decode()
    if mode == "custom" and not profile:
        raise InvalidTaskSpec("a custom seccomp mode needs a profile")
    selinux = raw.get("SELinuxContext") or {}
    credential = raw.get("CredentialSpec") or {}
    return {
        "no_new_privileges": bool(raw.get("NoNewPrivileges")),
        "seccomp_mode": mode,
        "seccomp_profile": str(profile),
        "selinux_label": any(bool(v) for v in selinux.values()),
        "credential_spec": any(bool(v) for v in credential.values()),
    }


def parse_mount(raw: Mapping[str, Any]) -> MountSpec:
    """One ContainerSpec.Mounts entry, checked as swarmkit's and dockerd's validation do."""
    kind = str(raw.get("Type") or "volume").lower()
    if kind not in MOUNT_TYPES:
        raise InvalidTaskSpec(f"invalid MountType: {raw.get('Type')!r}".replace("'", '"'))
    source = str(raw.get("Source") or "")
    target = str(raw.get("Target") or "")
    if not target:
        raise InvalidTaskSpec(f'invalid mount config for type "{kind}": field Target must not be empty')
    if not os.path.isabs(target):
        raise InvalidTaskSpec(f"invalid mount target, must be an absolute path: {target}")
    if kind == "bind":
        if not source:
            raise InvalidTaskSpec('invalid mount config for type "bind": field Source must not be empty')
        if not os.path.isabs(source):
            raise InvalidTaskSpec(f"invalid bind mount source, must be an absolute path: {source}")
    elif kind == "volume":
        if os.path.isabs(source) or "/" in source:
            raise InvalidTaskSpec(f"invalid volume mount source, must not be an absolute path: {source}")
    elif source:
        raise InvalidTaskSpec("invalid tmpfs source, source must be empty")
    tmpfs = raw.get("TmpfsOptions") or {}
    bind = raw.get("BindOptions") or {}
    return MountSpec(
        type=kind,
        source=source,
        target=os.path.normpath(target),
        read_only=bool(raw.get("ReadOnly")),
        tmpfs_size=int(tmpfs.get("SizeBytes") or 0),
        tmpfs_mode=int(tmpfs.get("Mode") or 0),
        propagation=str(bind.get("Propagation") or ""),
    )


def check_bind_sources(options: TaskOptions) -> None:
    """Bind sources must exist on this node (dockerd checks when it creates the container)."""
    for mount in options.mounts:
        if mount.type == "bind" and not os.path.exists(mount.source):
            raise InvalidTaskSpec(
                f'invalid mount config for type "bind": bind source path does not exist: {mount.source}'
            )


def normalize_capability(name: str) -> str:
    upper = str(name).strip().upper()
    if upper == "ALL":
        return upper
    bare = upper.removeprefix("CAP_")
    if bare not in CAPABILITIES:
        raise InvalidTaskSpec(f"unknown capability: {name!r}".replace("'", '"'))
    return "CAP_" + bare


def parse_ulimit(raw: Mapping[str, Any]) -> Ulimit:
    name = str(raw.get("Name") or "")
    if name not in ULIMIT_NAMES:
        raise InvalidTaskSpec(f"invalid ulimit type: {name}")
    soft, hard = int(raw.get("Soft") or 0), int(raw.get("Hard") or 0)
    if soft > hard:
        raise InvalidTaskSpec(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return Ulimit(name, soft, hard)


def parse_host_entry(entry: str) -> tuple[str, tuple[str, ...]]:
    """Swarm keeps extra hosts as "IP name [name...]" (the CLI turns --host name:IP into that)."""
    words = str(entry).split()
    if len(words) < 2:
        raise InvalidTaskSpec(f"invalid extra host entry: {entry!r}")
    try:
        ipaddress.ip_address(words[0])
    except ValueError:
        raise InvalidTaskSpec(f"invalid IP address in add-host: {words[0]!r}") from None
    return words[0], tuple(words[1:])


def check_sysctl(key: str, value: str) -> tuple[str, str]:
    """Only namespaced sysctls, as Docker allows: IPC ones and net.* (the task has its own netns)."""
    if key in _IPC_SYSCTLS or key.startswith(("fs.mqueue.", "net.")):
        return key, value
    raise InvalidTaskSpec(f"sysctl {key!r} is not allowed".replace("'", '"'))


def _nameserver(server: str) -> str:
    try:
        ipaddress.ip_address(str(server))
    except ValueError:
        raise InvalidTaskSpec(f"{server} is not an ip address") from None
    return str(server)
