"""Ballast: runbook automation and incident response for teams that run AI systems.

An alert flows through the sub-packages in this order::

    intake/ -> store/ (inbox) -> matching/ -> incidents/ -> execution/ + actions/
            -> slack/ -> postmortem/

``app.py`` wires them together; nothing else constructs long-lived objects.
"""

__version__ = "0.1.0"
