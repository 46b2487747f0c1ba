"""Raft consensus as a pure state machine (stdlib only): stepped by messages and ticks,
returning Ready batches of effects for a driver to carry out."""
