"""Prefect flows, one per file, named as verb phrases. Orchestration only."""
