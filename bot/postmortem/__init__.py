"""postmortem."""
