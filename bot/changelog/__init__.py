"""The change log: what changed in an AI system, and when — one history for pipelines, people,
release gates and Ballast's own control changes (``kinds``: what a change can be; ``log``: the
table's reads and writes; ``ranking``: which changes an incident shows first)."""
