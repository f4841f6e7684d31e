"""Alerts to the vendor's service desk: P1/P2 findings, silent hosts, deadlines near or past.

`config` (channels and per-contract settings), `messages` (text and per-channel payloads),
`engine` (what to notify, once), `deliver` (webhooks and mail through the DB outbox).
"""
