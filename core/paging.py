"""Paged results: one page of rows and where it sits in the whole, for any listing."""

from __future__ import annotations

import math
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
