"""Everything that touches a host: sources, log scanning, history, spool, shipping, the CLI."""

__version__ = "0.1.0"
