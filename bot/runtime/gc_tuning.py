"""The server's garbage-collector policy, set once at start-up (process-wide, so it lives here
and is called from where the server starts, not from any one component).

Python's full (generation 2) garbage collections scanned the whole start-up heap — runbooks,
models, SQLAlchemy's and FastAPI's objects — and stopped the event loop for 50-100 ms every few
seconds under load: that was the webhook p99.9. Frozen, they take 2-5 ms. Measured with
``bench/ingest.py`` (docs/benchmarks.md, "Webhook ingest"): GC fell from 1.7 s to 0.7 s per 12 s
at the ingest ceiling.
"""

from __future__ import annotations

import gc

# Young-generation threshold (Python's default is 700 allocations). A 50-alert webhook
# allocates a few thousand containers, nearly all freed by reference counting, and at the
# default the collector ran thousands of times a second and promoted the live ones of the
# requests in flight into older generations whose collections took 15-20 ms: 12% of the
# server's CPU at the ingest ceiling, collecting almost nothing (under 0.1% of what it scanned).
GC_YOUNG_THRESHOLD = 10_000
GC_OLDER_THRESHOLDS = (20, 20)
_heap_frozen = False


def freeze_startup_heap() -> None:
    """Once per process, after everything is built: what exists now lives until exit, so never
    rescan it; and collect the young generation less often (see GC_YOUNG_THRESHOLD)."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)
