"""Runbooks as code: schema, loader with file:line diagnostics, checks, tests, catalog."""
