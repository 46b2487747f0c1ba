"""Which executor a daemon uses when none is configured: oci where containers can run (root,
overlayfs, a working OCI runtime), else process. Returns the reason, for shoald's start-up log."""

from __future__ import annotations

from shoal.executor.oci.runtime import choose_runtime, unavailable_reason


def default_executor() -> tuple[str, str]:
    runtime = choose_runtime()
    reason = unavailable_reason(runtime)
    if reason is None:
        return "oci", f"default where containers can run: root, overlayfs and {runtime.why}"
    return "process", f"default because the oci executor cannot run here: {reason}"
