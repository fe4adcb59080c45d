"""Browser tests: remember each phase's report so the page fixture can screenshot failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
