"""Tables as GitHub Markdown, for the ``*.md`` files entry points write beside their CSVs."""

from __future__ import annotations

import pandas as pd


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if pd.isna(value) else f"{value:.3f}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' ``to_markdown`` when ``tabulate`` is installed)."""
    try:
        return table.to_markdown(index=False, floatfmt=".3f", missingval="-")
    except ImportError:
        return markdown_table(table)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown table without ``tabulate``: floats to 3 decimals, missing as ``-``."""
    lines = [
        "| " + " | ".join(str(c) for c in table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)
