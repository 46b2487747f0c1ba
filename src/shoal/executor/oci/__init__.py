"""The oci executor: tasks run their images in containers (crun or runc) under shoal's shim."""

from shoal.executor.oci.executor import OciExecutor
from shoal.executor.oci.source import ImageSource, LocalImageSource

__all__ = ["ImageSource", "LocalImageSource", "OciExecutor"]
