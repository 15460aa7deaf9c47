"""The garbage collector, set for a long-lived server process.

Django, DRF, the Elasticsearch client and protobuf leave a few hundred thousand objects that
live as long as the process. Every full collection walks all of them, and a batch request
allocates enough (thousands of dicts for 500 items) to set one off every few requests.
Frozen once the code is loaded, they are never walked again: in process, a 500-document
bulk request cost about a fifth less CPU (docs/benchmarks.md).
"""

import gc

from django.urls import get_resolver


def heap_freeze() -> None:
    """Load every view (the URLconf imports them), collect once, and freeze what is left.

    Call it once, at the end of a process's start-up, before it serves.
    """
    get_resolver().url_patterns  # noqa: B018 (imported for its side effect: every view loads)
    gc.collect()
    gc.freeze()
