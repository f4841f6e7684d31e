"""Inspection reports per contract and period: data assembly, scoring, rendering and delivery.

`build_report_for_runs` (collector.reports.build) is the entry point for callers without a
database (`xunjian ssh --report`); the scheduler and `xunjian report build` go through the DB.
"""
