"""Keep the cyclic garbage collector from stalling a long-running process (a sender, the
webhook app).

A full (generation 2) collection walks every tracked object: in a worker that imported
SQLAlchemy, SQLModel, pydantic, aiohttp and httpx that is hundreds of thousands of
objects, 50-160 ms with the event loop stopped, about once a second at 1,000 sends a
second. Sends whose start the limiter counted just before such a pause reach Meta
together with the next ones, so Meta counts more than the cap in one second (130429)
although no more than the cap started in any window.

`freeze_start_up_heap()` collects once and moves everything alive after start-up
(modules, classes, settings, the engine) into the permanent generation, which
collections never walk: a full collection then only walks what the process made since
(sends in flight, claimed rows, webhook requests in flight). Garbage is still freed as
before: reference counting frees almost everything, and the collector still finds cycles
among new objects. The frozen objects are the ones that live as long as the process
anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

#: The first generation's threshold while a bulk step runs (`fewer_collections`): about
#: one young collection per 100 rows of a CSV check or import, not one per row or two.
BULK_THRESHOLD = 50_000


def freeze_start_up_heap() -> int:
    """Collect, then freeze every object alive now; return how many were frozen.

    Call it once in a long-running process, after its imports and set-up and before its
    steady work (the worker calls it before its event loop starts).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def warm_imports() -> None:
    """Import what a worker loads lazily on its first send, so it is frozen too."""
    import aiohttp  # noqa: F401
    import httpx  # noqa: F401

    import core.batches
    import core.cloud_api  # noqa: F401


class _BulkSteps:
    """How many bulk steps are running, and the thresholds to restore after the last."""

    lock = threading.Lock()
    running = 0
    saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections(threshold: int = BULK_THRESHOLD) -> Iterator[None]:
    """Collect garbage less often while a bulk step (checking or queuing a 100,000-row
    CSV) makes and drops millions of small containers: the first generation's
    threshold is raised to `threshold` meanwhile, and restored when the last such step
    in the process ends (steps may overlap in threads).

    With the default (700), such a step runs thousands of young collections and a
    dozen or more full ones, each walking every object the process holds (the plan's
    rows among them): seconds of a 100,000-row upload. Nothing stops being collected:
    reference counting frees almost everything at once, as before, and cycles are still
    found, a little later. The thresholds are process-wide; one changed by someone else
    meanwhile is put back to what it was when the first step began.
    """
    with _BulkSteps.lock:
        if _BulkSteps.running == 0:
            _BulkSteps.saved = gc.get_threshold()
            first, *older = _BulkSteps.saved
            gc.set_threshold(max(first, threshold), *older)
        _BulkSteps.running += 1
    try:
        yield
    finally:
        with _BulkSteps.lock:
            _BulkSteps.running -= 1
            if _BulkSteps.running == 0 and _BulkSteps.saved is not None:
                gc.set_threshold(*_BulkSteps.saved)
                _BulkSteps.saved = None


def give_back_free_memory() -> None:
    """Hand the C heap's free memory back to the system, after a bulk step freed a
    plan of 100,000 rows or the garbage of checking or queuing one.

    Python gives big strings (each row's request body) to the C allocator, which keeps
    much of what they held once freed (free pages between live ones are not returned by
    themselves): a buyer checking a file again for another template after queuing it (a
    template paused mid-send) left the dashboard at +639 MB over idle with one plan
    alive, 140 MB of it free and kept. glibc's `malloc_trim` returns such pages;
    elsewhere (no glibc) this does nothing.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return trim
