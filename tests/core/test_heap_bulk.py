"""Bulk steps (a 100,000-row CSV check or import) collect garbage less often meanwhile,
and leave the collector as they found it, also when they overlap or fail."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from core.heap import BULK_THRESHOLD, fewer_collections


@pytest.fixture(autouse=True)
def _thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_raises_the_young_threshold_and_restores_it(_thresholds: tuple[int, int, int]) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (max(_thresholds[0], BULK_THRESHOLD), *_thresholds[1:])
    assert gc.get_threshold() == _thresholds


def test_restores_after_a_failure(_thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the import failed")
    assert gc.get_threshold() == _thresholds


def test_overlapping_steps_restore_once_the_last_ends(_thresholds: tuple[int, int, int]) -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with fewer_collections():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(5)
    with fewer_collections():
        second_in.set()
        first_out.wait(5)
        seen.append(gc.get_threshold())  # the first ended; this one still runs
    worker.join(5)
    assert seen == [(max(_thresholds[0], BULK_THRESHOLD), *_thresholds[1:])]
    assert gc.get_threshold() == _thresholds


def test_never_lowers_a_higher_threshold() -> None:
    gc.set_threshold(BULK_THRESHOLD * 2, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (BULK_THRESHOLD * 2, 10, 10)
    assert gc.get_threshold() == (BULK_THRESHOLD * 2, 10, 10)


def test_works_as_a_decorator(_thresholds: tuple[int, int, int]) -> None:
    @fewer_collections()
    def step() -> tuple[int, int, int]:
        return gc.get_threshold()

    assert step()[0] == max(_thresholds[0], BULK_THRESHOLD)
    assert step()[0] == max(_thresholds[0], BULK_THRESHOLD)  # reusable
    assert gc.get_threshold() == _thresholds
