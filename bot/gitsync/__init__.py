"""Runbooks from a git remote: the git CLI, Ballast's own working copy, the syncer."""
