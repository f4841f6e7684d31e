"""The alarm-log scan: tailing, windowing and drain3 templates. Entry point: `scan.scan_logs`."""
