"""The garbage collector, set for a long-lived server process (web worker, queue worker).

Django, DRF, the Elasticsearch client and protobuf leave a few hundred thousand objects that
live as long as the process. Every full collection walks all of them, and a batch (a 500-item
request, a drain's 1,000 payloads) allocates enough to set one off every few batches. Frozen
once the process has started, they are never walked again (figures in docs/benchmarks.md).
"""

import gc


def heap_freeze() -> None:
    """Collect once, then freeze what is left: call it when a process has loaded its code."""
    gc.collect()
    gc.freeze()


def heap_freeze_on_spawn(**_: object) -> None:
    """django-q2's `post_spawn` receiver: a queue worker freezes its heap before its first task."""
    heap_freeze()
