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

import gc


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
