"""The worker process freezes its start-up heap, so full collections stay short."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from core import heap
from core.sender import run_loop


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()  # later tests collect as usual


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector can free it


def test_start_up_objects_are_frozen_and_new_cycles_are_still_collected() -> None:
    kept = _Node()
    assert heap.freeze_start_up_heap() > 0
    assert gc.get_freeze_count() > 0
    tracked = {id(o) for o in gc.get_objects()}
    assert id(kept) not in tracked  # a collection never walks it again
    garbage = _Node()
    alive = weakref.ref(garbage)
    del garbage
    assert alive() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert alive() is None  # new cycles are still collected


def test_run_loop_freezes_before_the_worker_starts() -> None:
    gc.unfreeze()
    seen: list[int] = []

    async def main() -> str:
        seen.append(gc.get_freeze_count())
        return "done"

    assert run_loop(main()) == "done"
    assert seen and seen[0] > 0
