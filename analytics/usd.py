"""Money arithmetic for the marts: sums that are exact and independent of row order."""

from __future__ import annotations

import polars as pl

USD_SCALE = 12
"""Decimal places kept per row (a picodollar), far below any price and any cent."""

_USD_DECIMAL = pl.Decimal(38, USD_SCALE)


def sum_usd(column: str | pl.Expr) -> pl.Expr:
    """Sum a float64 USD column through a fixed-point decimal.

    Float addition depends on order, and Polars may split a group across threads, so a float
    sum could differ in the last bit between two runs over the same ledger. A decimal sum is
    exact, so the mart is byte-identical on every rebuild and agrees with any other engine
    that sums the same values.
    """
    values = pl.col(column) if isinstance(column, str) else column
    return values.cast(_USD_DECIMAL).sum().cast(pl.Float64)


def sum_exact(column: str | pl.Expr) -> pl.Expr:
    """The fixed-point sum itself, for partial sums that are added up again later (`sum_usd`'s
    float comes only at the end, so partials never round)."""
    values = pl.col(column) if isinstance(column, str) else column
    return values.cast(_USD_DECIMAL).sum()
