"""``ballast demo``: the closed loop with real parts, on loopback.

:mod:`bot.demo.stack` starts and stops Ballast, the simulated support assistant, Prometheus and
Alertmanager; :mod:`bot.demo.loop` injects a fault and follows each step of the loop;
:mod:`bot.demo.measure` times Ballast's own share (webhook received → control served).
"""

from __future__ import annotations

from bot.demo.loop import SCENARIOS, LoopResult, Scenario, StepResult, run_loop
from bot.demo.stack import MissingBinary, Stack

__all__ = [
    "SCENARIOS",
    "LoopResult",
    "MissingBinary",
    "Scenario",
    "Stack",
    "StepResult",
    "run_loop",
]
