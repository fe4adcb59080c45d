"""core.paging: pages of a list read whole, clamped into range, with row positions."""

from __future__ import annotations

import pytest

from core.paging import ResultPage, clamp_page, page_of


def test_a_list_pages_to_its_last_row() -> None:
    rows = list(range(1, 58))  # 57 rows, pages of 20
    first = page_of(rows, 1, 20)
    last = page_of(rows, 3, 20)
    assert (first.rows[0], first.first_row, first.last_row, first.pages) == (1, 1, 20, 3)
    assert (last.rows, last.first_row, last.last_row) == (list(range(41, 58)), 41, 57)
    assert sum(len(page_of(rows, n, 20).rows) for n in (1, 2, 3)) == 57


@pytest.mark.parametrize(("asked", "shown"), [(0, 1), (-5, 1), (4, 3), (99, 3), (2, 2)])
def test_a_page_outside_the_list_is_moved_into_it(asked: int, shown: int) -> None:
    assert clamp_page(asked, 57, 20) == shown
    assert page_of(list(range(57)), asked, 20).page == shown


def test_an_empty_list_has_one_empty_page() -> None:
    empty: ResultPage[int] = page_of([], 3, 20)
    assert (empty.page, empty.pages, empty.rows, empty.first_row, empty.last_row) == (
        1, 1, [], 0, 0)  # fmt: skip
    with pytest.raises(ValueError):
        page_of([1], 1, 0)
