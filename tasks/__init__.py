"""Prefect tasks: thin wrappers over patchfleet's library that set retries, timeouts and caching.

One task takes a *batch* of nodes, never one node: a Prefect task costs ~10 ms here, a node
scan about as much (reference/calibration.md), so per-node tasks would double the cost.
"""
