"""Clients of the services that actions talk to (paging providers, HTTP policy)."""
