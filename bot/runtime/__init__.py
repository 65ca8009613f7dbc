"""Process-level machinery shared by every package: background worker loops, GC tuning."""
