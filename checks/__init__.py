"""The inspection checklist as pure code: typed facts in, findings out. No I/O besides catalogs."""
