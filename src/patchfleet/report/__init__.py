"""Reports: AWS-format CSVs with QuickSight manifests (``csv_reports``), published to any S3
endpoint (``publish``)."""
