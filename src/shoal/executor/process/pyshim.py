"""The shim in Python, for hosts without a C compiler: same command line, files and behaviour as
shim.c (read that file's header), at ~10 MB per task instead of ~1 MB. Standard library only, run as
`python3 -S pyshim.py run|exec ...`, so it imports nothing of shoal's.

Python 3.11 has no os.unshare/os.setns: namespaces come from libc through ctypes."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import fcntl
import os
import resource
import select
import signal
import sys
import termios
import time
from collections.abc import Callable
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
MS_RDONLY, MS_REMOUNT = 1, 32
PR_SET_CHILD_SUBREAPER = 36
LINE_MAX = 16384

_libc: Any = None


def libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def now_rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return 0
    return int(raw[raw.rfind(b")") + 2 :].split()[19])


def write_state(state: str, name: str, text: str) -> None:
    tmp = os.path.join(state, f".{name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(state, name))


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


def parse(argv: list[str], exec_mode: bool) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-n", dest="namespaces", action="store_true")
    p.add_argument("-T", dest="tty", action="store_true")
    p.add_argument("-I", dest="init", action="store_true")
    p.add_argument("-R", dest="readonly_root", action="store_true")
    p.add_argument("-x", dest="mounts", action="append", default=[])
    p.add_argument("-r", dest="rlimits", action="append", default=[])
    p.add_argument("-u", dest="uid", type=int, default=-1)
    p.add_argument("-g", dest="gid", type=int, default=-1)
    p.add_argument("-G", dest="groups", default=None)
    p.add_argument("-w", dest="workdir", default=None)
    p.add_argument("-c", dest="cgroups", action="append", default=[])
    if exec_mode:
        p.add_argument("-t", dest="target", type=int, required=True)
    else:
        p.add_argument("-s", dest="state", required=True)
        p.add_argument("-h", dest="hostname", default=None)
        p.add_argument("-k", dest="hook", default=None)
        p.add_argument("-b", dest="binds", action="append", default=[])
        p.add_argument("-m", dest="maxlog", type=int, default=10 * 1024 * 1024)
    p.add_argument("argv", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.argv and args.argv[0] == "--":
        args.argv = args.argv[1:]
    if not args.argv:
        p.error("no command")
    return args


# ------------------------------------------------------------------------------ becoming the workload


def join_cgroups(args: argparse.Namespace) -> None:
    for procs in args.cgroups:
        with open(procs, "w") as f:
            f.write("0")


def take_terminal(name: str | None) -> None:
    """New session with terminal `name` (or stdin's) as controlling tty and, if named, as stdio."""
    os.setsid()
    if name:
        fd = os.open(name, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def exec_workload(args: argparse.Namespace, report: Callable[[str], None]) -> int:
    """chdir, drop privileges, exec; on failure report why and return the shell's code."""
    try:
        for entry in args.rlimits:  # NAME=SOFT:HARD, before the privileges drop
            name, _, limits = entry.partition("=")
            soft, _, hard = limits.partition(":")
            resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (int(soft), int(hard)))
        if args.workdir:
            os.chdir(args.workdir)
        if args.groups is not None:
            os.setgroups([int(g) for g in args.groups.split(",") if g])
        if args.gid >= 0:
            os.setgid(args.gid)
        if args.uid >= 0:
            os.setuid(args.uid)
    except OSError as exc:
        report(f"{exc.strerror}: {exc.filename or ''}".strip())
        return 126
    try:
        os.execvp(args.argv[0], args.argv)
    except OSError as exc:
        if exc.errno == errno.ENOENT and "/" not in args.argv[0]:
            report(f'exec: "{args.argv[0]}": executable file not found in $PATH')
        else:
            report(f'exec: "{args.argv[0]}": {exc.strerror}')
        return 127 if exc.errno == errno.ENOENT else 126
    return 126  # not reached


def reset_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGCHLD, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def forward_until_exit(child: int) -> int:
    """As an init: pass every catchable signal to `child`, reap everything, return child's code."""
    catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, catchable)
    while True:
        info = signal.sigwaitinfo(catchable)
        if info.si_signo == signal.SIGCHLD:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return 255
                if pid == 0:
                    break
                if pid == child:
                    return exit_code(status)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, info.si_signo)


def run_init(args: argparse.Namespace, go: int, err_w: int, out_w: int, errout_w: int) -> int:
    """pid 1 of the task's namespaces: wait for the network, set up mounts and hostname, then become
    the workload (or, with -I, fork it and forward signals until it exits)."""
    if os.read(go, 1) != b"g":
        return 1
    os.close(go)

    def report(text: str) -> None:
        os.write(err_w, text.encode())

    c = libc()
    try:
        _check(c.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
        _check(c.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
        for bind in args.binds:
            src, _, dst = bind.partition(":")
            _check(c.mount(src.encode(), dst.encode(), None, MS_BIND, None), f"bind {src} on {dst}")
        for spec in args.mounts:  # KIND,MODE,SRC,DST as the C shim's -x
            kind, mode, src, dst = spec.split(",", 3)
            ro = MS_RDONLY if mode == "ro" else 0
            if kind == "tmpfs":
                data = None if src == "-" else src.replace(";", ",").encode()
                flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | ro
                _check(c.mount(b"tmpfs", dst.encode(), b"tmpfs", flags, data), f"mount tmpfs on {dst}")
            else:
                _check(c.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None), f"bind {src} on {dst}")
                if ro:
                    remount = MS_REMOUNT | MS_BIND | MS_RDONLY
                    _check(c.mount(None, dst.encode(), None, remount, None), f"read-only {dst}")
        if args.readonly_root:
            _check(c.mount(None, b"/", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None), "make the root read-only")
        if args.hostname:
            name = args.hostname.encode()
            _check(c.sethostname(name, len(name)), "sethostname")
        join_cgroups(args)
    except OSError as exc:
        report(str(exc.strerror if exc.strerror and ":" in exc.strerror else exc))
        return 126
    catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, catchable)
    # without -I the workload itself is pid 1 (as in Docker); with it, this init forwards signals
    child = os.fork() if args.init else 0
    if child == 0:
        reset_signals()
        os.dup2(out_w, 1)
        os.dup2(errout_w, 2)
        if args.tty:
            try:
                take_terminal(args.ttyname)
            except OSError as exc:
                report(f"set controlling terminal: {exc.strerror}")
                os._exit(126)
        os._exit(exec_workload(args, report))
    for fd in (err_w, out_w, errout_w):
        os.close(fd)
    return forward_until_exit(child)


# ------------------------------------------------------------------------------ the supervisor


class Logger:
    def __init__(self, state: str, maxlog: int) -> None:
        self.path = os.path.join(state, "log")
        self.max = maxlog
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def record(self, stream: str, tag: str, data: bytes) -> None:
        if self.max > 0 and self.size >= self.max:
            os.replace(self.path, self.path + ".1")
            os.close(self.fd)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            self.size = 0
        rec = f"{now_rfc3339()} {stream} {tag} ".encode() + data + b"\n"
        self.size += os.write(self.fd, rec)


def spawn_in_namespaces(args: argparse.Namespace, fds: dict[str, int], report: int) -> int:
    """Fork a helper that unshares and forks the init, then leaves; as child subreaper we adopt the
    init, so the supervisor still waits for it. Returns the init's (host) pid."""
    _check(libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "become subreaper")
    pid_r, pid_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        os.close(pid_r)
        os.close(report)
        try:
            flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET
            _check(libc().unshare(flags), "create namespaces")
        except OSError as exc:
            os.write(fds["err_w"], str(exc).encode())
            os._exit(126)
        init = os.fork()
        if init == 0:
            os.close(pid_w)
            for name in ("out_r", "errout_r", "err_r", "go_w"):
                os.close(fds[name])
            os._exit(run_init(args, fds["go_r"], fds["err_w"], fds["out_w"], fds["errout_w"]))
        os.write(pid_w, str(init).encode())
        os._exit(0)
    os.close(pid_w)
    text = os.read(pid_r, 32)
    os.close(pid_r)
    os.waitpid(helper, 0)
    if not text:
        return -1
    return int(text)


def supervise(args: argparse.Namespace, report: int) -> int:
    write_state(args.state, "supervisor", f"{os.getpid()} {start_time(os.getpid())}\n")
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    errout_r, errout_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    fds = {
        "out_r": out_r, "out_w": out_w, "errout_r": errout_r, "errout_w": errout_w,
        "err_r": err_r, "err_w": err_w, "go_r": go_r, "go_w": go_w,
    }  # fmt: skip
    master = -1
    args.ttyname = None
    if args.tty:  # the workload opens the terminal by name, so only it holds the slave side
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        args.ttyname = os.ttyname(slave)
        os.close(slave)
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    if args.namespaces:
        child = spawn_in_namespaces(args, fds, report)
    else:
        child = os.fork()
        if child == 0:
            os.close(report)
            for fd in (out_r, errout_r, err_r, go_w, go_r):
                os.close(fd)
            reset_signals()
            signal.set_wakeup_fd(-1)
            if not args.tty:
                os.setpgid(0, 0)  # its own group, so a kill reaches what it forks (-T: setsid)

            def tell(text: str) -> None:
                os.write(err_w, text.encode())

            try:
                join_cgroups(args)
            except OSError as exc:
                tell(f"join cgroup: {exc.strerror}")
                os._exit(126)
            os.dup2(out_w, 1)
            os.dup2(errout_w, 2)
            if args.tty:
                try:
                    take_terminal(args.ttyname)
                except OSError as exc:
                    tell(f"set controlling terminal: {exc.strerror}")
                    os._exit(126)
            os._exit(exec_workload(args, tell))
    started = start_time(child) if child > 0 else 0
    for fd in (out_w, errout_w, err_w, go_r):
        os.close(fd)
    failure = b""
    if child < 0:
        failure = b"create namespaces failed"
    elif args.namespaces and args.hook:
        import subprocess

        hook_log = os.path.join(args.state, "hook.log")
        with open(hook_log, "wb") as out:
            code = subprocess.call(
                ["/bin/sh", "-c", args.hook, "sh", str(child)], stdout=out, stderr=out, close_fds=True
            )
        if code != 0:
            with open(hook_log, "rb") as f:
                why = b" ".join(f.read(2000).split())
            failure = b"network setup failed: " + why
            os.kill(child, signal.SIGKILL)
    if args.namespaces and not failure and child > 0:  # only the init reads it
        os.write(go_w, b"g")
    os.close(go_w)
    if not failure:
        while chunk := os.read(err_r, 2048):
            failure += chunk
    os.close(err_r)
    if not failure:
        write_state(args.state, "pid", f"{child} {started}\n{now_rfc3339()}\n")
        os.write(report, f"ok {child}\n".encode())
    else:
        write_state(args.state, "error", failure.decode(errors="replace"))
        os.write(report, b"error " + failure + b"\n")
    os.close(report)

    logger = Logger(args.state, args.maxlog)
    streams = {out_r: ("stdout", bytearray()), errout_r: ("stderr", bytearray())}
    if master >= 0:  # with a terminal everything the workload writes arrives on it
        os.close(out_r)
        del streams[out_r]
        streams[master] = ("stdout", bytearray())
    status, exited = 0, child <= 0
    while streams:
        readable, _, _ = select.select([*streams, wake_r], [], [], 0.2 if exited else None)
        if not readable and exited:
            break
        if wake_r in readable:
            while True:
                try:
                    if not os.read(wake_r, 64):
                        break
                except BlockingIOError:
                    break
        while not exited:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                exited = True
                break
            if pid == 0:
                break
            if pid == child:
                status, exited = st, True
        for fd in [fd for fd in readable if fd in streams]:
            name, buf = streams[fd]
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: a terminal whose last slave closed
                chunk = b""
            if not chunk:
                if buf:
                    logger.record(name, "F", bytes(buf))
                os.close(fd)
                del streams[fd]
                continue
            buf += chunk
            *lines, rest = bytes(buf).split(b"\n")
            for line in lines:
                while len(line) > LINE_MAX:  # records stay bounded, as the C shim's buffer makes them
                    logger.record(name, "P", line[:LINE_MAX])
                    line = line[LINE_MAX:]
                logger.record(name, "F", line)
            buf[:] = rest
            while len(buf) >= LINE_MAX:
                logger.record(name, "P", bytes(buf[:LINE_MAX]))
                del buf[:LINE_MAX]
    while not exited and child > 0:
        try:
            pid, st = os.waitpid(child, 0)
            status, exited = st, True
        except ChildProcessError:
            break
    code = exit_code(status)
    if failure and code == 0:
        code = 127
    write_state(args.state, "exit", f"{code}\n{now_rfc3339()}\n")
    return 0


def cmd_run(argv: list[str]) -> int:
    args = parse(argv, exec_mode=False)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    middle = os.fork()
    if middle == 0:
        os.close(report_r)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.chdir("/")
        try:
            code = supervise(args, report_w)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(report_w)
    os.waitpid(middle, 0)
    answer = b""
    while chunk := os.read(report_r, 2048):
        answer += chunk
    if not answer:
        answer = b"error supervisor died before reporting\n"
    sys.stdout.buffer.write(answer)
    return 0 if answer.startswith(b"ok ") else 1


def cmd_exec(argv: list[str]) -> int:
    args = parse(argv, exec_mode=True)

    def tell(text: str) -> None:
        os.write(2, (text + "\n").encode())

    try:
        join_cgroups(args)
    except OSError as exc:
        tell(f"join cgroup: {exc.strerror}")
        return 126
    if not args.namespaces:
        if args.tty:
            take_terminal(None)
        exec_workload(args, tell)
        return 126  # as dockerd: an exec that could not start exits 126
    kinds = ("ipc", "uts", "net", "pid", "mnt")
    fds = [os.open(f"/proc/{args.target}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC) for kind in kinds]
    for kind, fd in zip(kinds, fds, strict=True):
        if libc().setns(fd, 0) != 0:
            tell(f"enter {kind} namespace: {os.strerror(ctypes.get_errno())}")
            return 126
        os.close(fd)
    catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, catchable)
    child = os.fork()  # joining a pid namespace takes effect for children only
    if child == 0:
        reset_signals()
        if args.tty:
            take_terminal(None)
        exec_workload(args, tell)
        os._exit(126)  # as dockerd: an exec that could not start exits 126
    return forward_until_exit(child)


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        return cmd_run(sys.argv[2:])
    if len(sys.argv) >= 2 and sys.argv[1] == "exec":
        return cmd_exec(sys.argv[2:])
    if len(sys.argv) >= 2 and sys.argv[1] == "version":
        print("shoal-pyshim 1")
        return 0
    print("usage: pyshim run|exec|version ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
