"""Did it work? Recovery verification of applied mitigations against Prometheus, and ladders."""
