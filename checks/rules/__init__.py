"""One rule family a file; `checks.catalog` lists them explicitly."""
