"""The analytics page in a real browser: a manager opens it and sees plotly charts."""

from __future__ import annotations

from typing import Any

import pytest

from core.demo import seed_demo
from tests.fixtures.browser import TENANT, Product, log_in, screenshot, wait_idle

pytestmark = pytest.mark.browser


def test_a_manager_opens_analytics_and_sees_the_charts(page: Any, product: Product) -> None:
    seed_demo(product.engine(), TENANT)  # what `make run` seeds in sandbox mode
    log_in(page, product, "manager")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Analytics").click()
    wait_idle(page)
    charts = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot")
    charts.first.wait_for(timeout=60_000)
    assert charts.count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "analytics")
