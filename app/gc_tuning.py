"""Garbage-collector settings for a process that holds a large, long-lived heap.

Measured with 10,000 satellites on one server (docs/operations.md, "Capacity"):
with CPython's default thresholds (700, 10, 10), about 15 % of the server's CPU
went to the cyclic collector, and each full collection walked the whole heap
(the fleet, every held long poll, the caches) while the loop stood still: a
cheap request then waited up to 1.2 s (p99 0.9 s). After start-up the heap is
frozen (`gc.freeze()`: what exists then is never walked again; it is still
freed by reference counting) and collections run less often, on more objects
at a time: the same request's p99 fell to under 0.1 s. Memory grows a little,
since cyclic garbage waits longer for its collection.
"""

from __future__ import annotations

import gc

# Allocations between young collections, young collections per middle one, middle
# ones per full collection (CPython also waits until the long-lived heap grew 25 %).
THRESHOLDS = (50_000, 20, 100)


def tune_for_long_lived_heap() -> None:
    """Collect once, freeze what survived, and collect less often from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


__all__ = ["THRESHOLDS", "tune_for_long_lived_heap"]
