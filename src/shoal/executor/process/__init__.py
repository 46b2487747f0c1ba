"""The process executor: task commands run as host processes, held by a small C supervisor."""

from shoal.executor.process.executor import ProcessExecutor

__all__ = ["ProcessExecutor"]
