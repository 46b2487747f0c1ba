"""The engine version this daemon reports everywhere (`docker version`, `docker info`, and each node's
Description.Engine.EngineVersion), so they never disagree."""

from __future__ import annotations

ENGINE_VERSION = "20.10.24+shoal"
