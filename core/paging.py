"""Paged results: one page of rows and where it sits in the whole, for any listing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Row = TypeVar("Row")


@dataclass(frozen=True)
class ResultPage(Generic[Row]):
    """One page of results; lists page in SQL, so only these rows reach the browser."""

    rows: list[Row]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the whole result has (at least 1)."""
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def first_row(self) -> int:
        """The 1-based position in the whole result of this page's first row (0: none)."""
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        """The 1-based position in the whole result of this page's last row (0: none)."""
        return self.first_row + len(self.rows) - 1 if self.rows else 0


def clamp_page(page: int, total: int, page_size: int) -> int:
    """`page` moved into 1..pages (a list that shrank keeps showing its last page)."""
    pages = max(1, math.ceil(max(0, total) / max(1, page_size)))
    return min(max(1, int(page)), pages)


def page_of(rows: Sequence[Row], page: int, page_size: int) -> ResultPage[Row]:
    """Page `page` (clamped into range) of `page_size` rows of a list already in memory,
    for short lists read whole (templates, the rate card, users, settings)."""
    if page_size < 1:
        raise ValueError("a page holds at least one row")
    number = clamp_page(page, len(rows), page_size)
    start = (number - 1) * page_size
    return ResultPage(list(rows[start : start + page_size]), len(rows), number, page_size)
