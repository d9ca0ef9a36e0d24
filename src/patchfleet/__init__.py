"""patchfleet: a self-hosted, agentless patch manager for Linux fleets.

AWS Systems Manager Patch Manager semantics (baselines, Scan / Install, compliance states, CSV
reports) over plain SSH, orchestrated by Prefect, with compliance history kept as Parquet and
queried with DuckDB.
"""

__version__ = "0.1.0"
