"""Pure domain core: no Prefect, SSH, boto3, DuckDB or pyarrow here (a test enforces it)."""
