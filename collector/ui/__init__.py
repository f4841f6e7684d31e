"""The web console (网页控制台): server-rendered pages for the service desk and engineers.

`routes.mount_console(app, settings)` adds it to the collector's FastAPI app. `config` (the `[ui]`
settings) stays import-light because collector.settings imports it.
"""
