"""The vendor side: contracts, ingest, API, reports, alerts, console."""
