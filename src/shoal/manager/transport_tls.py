"""Moved to shoal.rpc (identity, tls); this name stays only until node/consensus.py imports from there."""

from shoal.rpc.tls import client_context

__all__ = ["client_context"]
