"""Reports: AWS-format CSVs with QuickSight manifests (``csv_reports``)."""
