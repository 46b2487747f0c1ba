"""What this front door tells clients about itself."""

from __future__ import annotations

from shoal.api.version import ENGINE_VERSION as ENGINE_VERSION  # re-exported: the front door's version

API_VERSION = "1.41"
"""Advertised as dockerd 20.10 does; docker CLI 28 and docker-py 7 negotiate down to it."""
MIN_API_VERSION = "1.12"
SERVER_HEADER = f"Docker/{ENGINE_VERSION} (linux)"
OS_TYPE = "linux"

JSON_CONTENT_TYPE = "application/json"
"""Exactly this, never with a charset: the docker CLI parses error bodies only on an exact match."""
RAW_STREAM_CONTENT_TYPE = "application/vnd.docker.raw-stream"
