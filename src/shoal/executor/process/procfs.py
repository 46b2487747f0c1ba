"""What /proc says about a process: its start time, which tells a live task from a reused pid."""

from __future__ import annotations


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot); None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ")"
    fields = raw[raw.rfind(b")") + 2 :].split()
    return int(fields[19])


def is_same_process(pid: int, started: int) -> bool:
    """True if `pid` still names the process that started at `started` (and is not a zombie)."""
    if start_time(pid) != started:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != b"Z"


def rss_bytes(pid: int) -> int:
    """Resident set size from /proc/<pid>/status (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size (shared pages divided among sharers): the honest per-process cost."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, PermissionError):
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


_NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", None, None, None, None,
               "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def network_counters(pid: int) -> dict[str, dict[str, int]]:
    """Interface → Docker's counters (rx_bytes, rx_packets, ... tx_dropped) in the network namespace
    of `pid`, from /proc/<pid>/net/dev; the loopback left out, as `docker stats` shows."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    found = {}
    for line in lines:
        name, _, counters = line.partition(":")
        name = name.strip()
        values = counters.split()
        if name == "lo" or len(values) < len(_NET_FIELDS):
            continue
        found[name] = {key: int(value) for key, value in zip(_NET_FIELDS, values, strict=False) if key}
    return found


def tree(pid: int) -> list[int]:
    """`pid` and every descendant (for a task that has no cgroup of its own)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children(current))
    return sorted(found)


def cpu_ns(pid: int, tick_ns: int) -> tuple[int, int]:
    """(user, system) CPU time of one process, from /proc/<pid>/stat (0, 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    fields = raw[raw.rfind(b")") + 2 :].split()
    return int(fields[11]) * tick_ns, int(fields[12]) * tick_ns
