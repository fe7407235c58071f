"""The service's documented caps on request size: what `/rank` and `/predict` accept."""

from __future__ import annotations

__all__ = ["DEFAULT_TOP", "MAX_BODY_BYTES", "MAX_ROWS"]

# Most rows one request may score: `/predict` rows, `/rank` candidates. Each request is
# one forward pass, so this bounds a request's memory and latency (10,000 rows of the
# seed's DCN take a few tens of milliseconds on one core).
MAX_ROWS = 10_000

# Largest request body, in bytes (10,000 rows of six features fit in about 1.5 MB).
MAX_BODY_BYTES = 4 * 1024 * 1024

# How many items `/rank` returns when the request gives no `top`.
DEFAULT_TOP = 10
