"""The oci executor's pure parts and the ContainerSpec options: Docker's rules, without a runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.executor.base import Resources, TaskRuntime
from shoal.executor.errors import InvalidTaskSpec
from shoal.executor.oci.bundle import DEFAULT_CAPABILITIES, INIT_PATH, BundleInputs, capabilities, runtime_config
from shoal.executor.oci.execcmd import exec_command, exec_process
from shoal.executor.oci.passwd import ContainerUser, resolve
from shoal.executor.oci.plan import merge_env, process_plan
from shoal.executor.oci.rootmount import overlay_options
from shoal.executor.oci.seccomp import oci_seccomp
from shoal.executor.process.etcfiles import hosts_file, resolv_conf
from shoal.executor.process.support import unsupported
from shoal.executor.taskoptions import TaskOptions, parse_mount, parse_options

ALL = tuple(f"CAP_{n}" for n in ("CHOWN", "SYS_ADMIN", "NET_ADMIN", "KILL"))


def rt(**kw: object) -> TaskRuntime:
    return TaskRuntime("t", "s", "svc", "n", 1, "img", **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- ContainerSpec options


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        ({"Type": "bogus", "Target": "/x"}, 'invalid MountType: "bogus"'),
        ({"Type": "tmpfs", "Source": "x", "Target": "/x"}, "invalid tmpfs source, source must be empty"),
        ({"Type": "bind", "Source": "rel", "Target": "/x"}, "invalid bind mount source, must be an absolute path: rel"),
        ({"Type": "volume", "Source": "/abs", "Target": "/x"}, "must not be an absolute path: /abs"),
        ({"Type": "bind", "Source": "/a", "Target": "x"}, "invalid mount target, must be an absolute path: x"),
    ],
)
def test_bad_mounts(mount: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidTaskSpec, match=message.replace("(", r"\(")):
        parse_mount(mount)


def test_options_parse_every_field() -> None:
    options = parse_options({
        "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700}}],
        "ReadOnly": True, "CapabilityAdd": ["sys_admin"], "CapabilityDrop": ["CAP_CHOWN"],
        "Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}],
        "DNSConfig": {"Nameservers": ["1.1.1.1"], "Search": ["a"], "Options": ["ndots:2"]},
        "Hosts": ["10.0.0.1 db db.local"], "Groups": ["50"], "Sysctls": {"net.core.somaxconn": "99"}, "Init": True,
    })
    assert options.cap_add == ("CAP_SYS_ADMIN",) and options.cap_drop == ("CAP_CHOWN",)
    assert options.extra_hosts == (("10.0.0.1", ("db", "db.local")),)
    assert TaskOptions.from_json(options.to_json()) == options
    assert [flag for _, flag in options.requested()] == [
        "--mount", "--read-only", "--cap-add", "--cap-drop", "--ulimit", "--dns", "--dns-search", "--dns-option",
        "--host", "--group", "--sysctl", "--init",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"Ulimits": [{"Name": "nofile", "Soft": 3, "Hard": 2}]}, "soft limit"),
        ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 2}]}, "invalid ulimit type: bogus"),
        ({"CapabilityAdd": ["CAP_NOPE"]}, "unknown capability"),
        ({"Sysctls": {"kernel.hostname": "x"}}, "not allowed"),
        ({"Hosts": ["nonsense"]}, "invalid extra host"),
        ({"DNSConfig": {"Nameservers": ["dns.example"]}}, "is not an ip address"),
    ],
)
def test_bad_options(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTaskSpec, match=message):
        parse_options(spec)


def test_process_executor_names_what_it_cannot_apply() -> None:
    options = parse_options({"ReadOnly": True, "Hosts": ["10.0.0.1 db"], "Groups": ["50"]})
    assert unsupported(options, isolated=True) == []
    mounts = parse_options({"Mounts": [{"Type": "tmpfs", "Target": "/t"}], "CapabilityDrop": ["CHOWN"]})
    assert [r.split(" ")[0] for r in unsupported(mounts, isolated=True)] == ["--cap-drop"]
    assert [r.split(" ")[0] for r in unsupported(mounts, isolated=False)] == ["--mount", "--cap-drop"]
    plain = unsupported(options, isolated=False)
    assert [r.split(" ")[0] for r in plain] == ["--read-only", "--host"]
    assert unsupported(parse_options({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}]}), isolated=False) == []


def test_etc_files_with_dns_and_hosts() -> None:
    text = resolv_conf("nameserver 10.0.0.2\nsearch old\noptions rotate\n", ["1.1.1.1"], ["new"], ["ndots:2"])
    assert text == "nameserver 1.1.1.1\nsearch new\noptions ndots:2\n"
    assert hosts_file("h", "10.1.0.2", [("10.0.0.9", ("db",))]).splitlines()[2:] == ["10.0.0.9\tdb", "10.1.0.2\th"]


# ---------------------------------------------------------------- image config and users


def test_command_replaces_entrypoint_and_args_replace_cmd() -> None:
    image = {"Entrypoint": ["/ep"], "Cmd": ["c1"], "Env": ["A=1", "PATH=/x"], "WorkingDir": "/w", "User": "u",
             "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}}}
    plan = process_plan(rt(), image, "h")
    assert plan.argv == ("/ep", "c1") and plan.cwd == "/w" and plan.user == "u" and plan.stop_signal == "SIGQUIT"
    assert plan.exposed_ports == ("80/tcp",)
    assert process_plan(rt(args=("a",)), image, "h").argv == ("/ep", "a")
    assert process_plan(rt(command=("sh",), args=("-c", "x")), image, "h").argv == ("sh", "-c", "x")
    assert process_plan(rt(stop_signal="SIGUSR1"), image, "h").stop_signal == "SIGUSR1"
    with pytest.raises(InvalidTaskSpec, match="no command"):
        process_plan(rt(), {}, "h")


def test_env_task_wins_and_path_defaults() -> None:
    assert merge_env(["A=1", "B=2"], ["B=3"], "h") == (
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h", "A=1", "B=3",
    )


def test_users_from_the_container_files() -> None:
    passwd = "root:x:0:0::/root:/bin/sh\napp:x:10:20::/home/app:/bin/sh\n"
    group = "root:x:0:\napp:x:20:\nextra:x:30:app\nother:x:40:\n"
    app = resolve("app", passwd, group)
    assert (app.uid, app.gid, app.additional_gids, app.home) == (10, 20, (30,), "/home/app")
    assert resolve("10:other", passwd, group).gid == 40
    assert resolve("1234:5678", passwd, group).uid == 1234
    assert resolve("", passwd, group, ("other",)).additional_gids == (40,)
    with pytest.raises(InvalidTaskSpec, match="unable to find user nobody"):
        resolve("nobody", passwd, group)
    with pytest.raises(InvalidTaskSpec, match="unable to find group nope"):
        resolve("app:nope", passwd, group)


# ---------------------------------------------------------------- bundle


def test_capabilities_docker_rules() -> None:
    assert capabilities(TaskOptions(), ALL) == list(DEFAULT_CAPABILITIES)
    added = capabilities(TaskOptions(cap_add=("CAP_SYS_ADMIN",), cap_drop=("CAP_CHOWN",)), ALL)
    assert "CAP_SYS_ADMIN" in added and "CAP_CHOWN" not in added
    assert capabilities(TaskOptions(cap_add=("ALL",)), ALL) == list(ALL)
    assert capabilities(TaskOptions(cap_drop=("ALL",), cap_add=("CAP_KILL",)), ALL) == ["CAP_KILL"]


def _inputs(options: TaskOptions, **kw: object) -> BundleInputs:
    from shoal.executor.oci.passwd import ContainerUser

    values: dict[str, object] = dict(
        argv=["sleep", "1"], env=["A=1"], cwd="/", user=ContainerUser(0, 0, (), "/root"), hostname="h", tty=False,
        options=options, resources=Resources(nano_cpus=500_000_000, memory_bytes=1 << 20, pids_limit=9),
        etc_files={"/etc/hosts": Path("/s/hosts")}, mount_sources=[None] * len(options.mounts),
        cgroups_path="/shoal/x/c", all_capabilities=ALL, seccomp=None, network_hook=None, init_binary=None,
    )
    values.update(kw)
    return BundleInputs(**values)  # type: ignore[arg-type]


def test_bundle_applies_options_and_limits() -> None:
    options = parse_options({
        "ReadOnly": True, "Ulimits": [{"Name": "nofile", "Soft": 5, "Hard": 6}], "Sysctls": {"net.core.somaxconn": "9"},
        "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 4096}}], "Init": True,
    })
    config = runtime_config(_inputs(options, init_binary=Path("/usr/bin/tini"), network_hook="ip link"))
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert config["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 6}]
    assert config["process"]["args"] == [INIT_PATH, "--", "sleep", "1"]
    assert config["linux"]["sysctl"] == {"net.core.somaxconn": "9"}
    assert config["linux"]["resources"]["memory"] == {"limit": 1 << 20}
    assert config["linux"]["resources"]["cpu"] == {"quota": 50_000, "period": 100_000}
    targets = [m["destination"] for m in config["mounts"]]
    assert {"/proc", "/dev", "/dev/shm", "/sys", "/etc/hosts", "/t", INIT_PATH} <= set(targets)
    assert "size=4096" in next(m for m in config["mounts"] if m["destination"] == "/t")["options"]
    assert config["hooks"]["createRuntime"][0]["args"][2].endswith("ip link")
    assert {"type": "user"} not in config["linux"]["namespaces"]


def test_seccomp_keeps_the_rules_for_this_arch_and_caps() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["new"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.0"}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        ],
    }
    plain = oci_seccomp(profile, ["CAP_CHOWN"], machine="x86_64", kernel="6.1.0")
    assert plain["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert [r["names"] for r in plain["syscalls"]] == [["read"], ["clone"]]
    admin = oci_seccomp(profile, ["CAP_SYS_ADMIN"], machine="x86_64", kernel="10.0")
    assert [r["names"] for r in admin["syscalls"]] == [["read"], ["mount"], ["new"]]


def test_overlay_lists_the_top_layer_first() -> None:
    options = overlay_options([Path("/l0"), Path("/l1")], Path("/u"), Path("/w"))
    assert options == "lowerdir=/l1:/l0,upperdir=/u,workdir=/w"


def test_exec_command_reports_126_when_nothing_started() -> None:
    cmd = exec_command(["runc", "--root", "/r"], container_id="c", process_file=Path("/p.json"),
                       pid_file=Path("/p"), tty=False)
    assert cmd[:2] == ["/bin/sh", "-c"] and "rc=126" in cmd[2]
    assert cmd[4:] == ["/p", "/p.json", "runc", "--root", "/r", "exec", "--pid-file", "/p", "--process", "/p.json", "c"]


def test_exec_process_replaces_the_containers_user_entirely() -> None:
    container = {"args": ["x"], "user": {"uid": 5, "gid": 5, "additionalGids": [7]}, "cwd": "/w",
                 "capabilities": {"bounding": ["CAP_KILL"]}, "terminal": False}
    process = exec_process(container, argv=["id"], env=["A=1"], user=ContainerUser(0, 0, (), "/"), cwd=None, tty=True)
    assert process["user"] == {"uid": 0, "gid": 0, "additionalGids": []}
    assert (process["args"], process["cwd"], process["terminal"]) == (["id"], "/w", True)
    assert process["capabilities"] == {"bounding": ["CAP_KILL"]} and container["args"] == ["x"]


def test_privileges() -> None:
    options = parse_options({"Privileges": {"Seccomp": {"Mode": "custom", "Profile": b'{"defaultAction": "x"}'},
                                            "NoNewPrivileges": True, "SELinuxContext": {"Disable": False}}})
    assert (options.seccomp_mode, options.no_new_privileges, options.selinux_label) == ("custom", True, False)
    assert runtime_config(_inputs(options))["process"]["noNewPrivileges"] is True
    assert parse_options({"Privileges": {"Seccomp": {"Mode": "default"}}}).seccomp_mode == ""
    with pytest.raises(InvalidTaskSpec, match="invalid seccomp mode"):
        parse_options({"Privileges": {"Seccomp": {"Mode": "weird"}}})
    assert parse_options({"Privileges": {"CredentialSpec": {"File": "x"}}}).credential_spec


def test_process_sysctls_are_written_inside_the_tasks_namespaces() -> None:
    from shoal.executor.process.sysctls import sysctl_script

    script = sysctl_script([("net.core.somaxconn", "99"), ("kernel.msgmax", "8192")])
    assert script.splitlines() == [
        "nsenter --net=/proc/$1/ns/net sh -c 'printf '\"'\"'%s\\n'\"'\"' 99 > /proc/sys/net/core/somaxconn'",
        "nsenter --ipc=/proc/$1/ns/ipc sh -c 'printf '\"'\"'%s\\n'\"'\"' 8192 > /proc/sys/kernel/msgmax'",
    ]
    assert unsupported(parse_options({"Sysctls": {"net.core.somaxconn": "1"}}), isolated=True) == []
