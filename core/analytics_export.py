"""The analytics supplier table as a CSV file, with the same rates as the page.

Each rate column is headed with the rate's name and base from `core.rates` ("Read, of
delivered (%)") and computed from the counts beside it, so a spreadsheet made from the
export says what the tiles, the funnel and the table say. Cells go through
`core.csv_export` (quoted, formulas neutralised: a supplier's name is outside text).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

from core import rates
from core.csv_export import results_csv
from core.i18n import _

#: The rates exported, each beside the counts it divides.
EXPORTED_RATES = (rates.DELIVERED, rates.READ, rates.ANSWERED)


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal ("72.5"), empty when undefined."""
    if value is None or pd.isna(value):
        return ""
    exact = Decimal(str(value)) * 100
    return str(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def supplier_table_csv(table: pd.DataFrame) -> bytes:
    """`core.stats.supplier_table`'s frame as CSV bytes: supplier, the counts, then each
    rate of `EXPORTED_RATES` as a percentage headed with its base."""
    columns = {
        "supplier": _("Supplier"),
        "messages": _("Messages"),
        "delivered": _("Delivered"),
        "read": _("Read"),
        "replied": _("Answered"),
        "failed": _("Failed"),
    }
    headers = [*columns.values(), *(f"{rate.label} (%)" for rate in EXPORTED_RATES)]
    rows: list[dict[str, Any]] = []
    for record in table.to_dict("records"):
        row = {header: record[key] for key, header in columns.items()}
        for rate in EXPORTED_RATES:
            row[f"{rate.label} (%)"] = percent(record.get(rate.key))
        rows.append(row)
    return results_csv(rows, headers)
