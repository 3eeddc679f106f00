"""Small markdown tables for the Dagster UI, built with pandas.

DataFrame.to_markdown needs the `tabulate` package, which the project does not depend on, so the
markdown is written here.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

TABLE_MAX_ROWS = 20


def _cell(value: object) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= 80 else text[:79] + "…"


def markdown_table(frame: pd.DataFrame, max_rows: int = TABLE_MAX_ROWS) -> str:
    """A GitHub-style markdown table of `frame` (index dropped), with a note when rows were left out."""
    if frame.empty:
        return "_none_"
    shown = frame.head(max_rows)
    lines = [
        "| " + " | ".join(_cell(c) for c in shown.columns) + " |",
        "|" + "|".join(" --- " for _ in shown.columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows not shown_")
    return "\n".join(lines)


def errors_by_type_and_source(counts: dict[tuple[str, str], Counter]) -> str:
    """Entries read and new in a window, per log type and source, busiest first."""
    rows = [
        {"type": type_, "source": source, "read": c["read"], "new": c["new"]}
        for (type_, source), c in counts.items()
    ]
    if not rows:
        return "_no error entries_"
    frame = (
        pd.DataFrame(rows)
        .groupby(["type", "source"], as_index=False)[["read", "new"]]
        .sum()
        .sort_values(["read", "type", "source"], ascending=[False, True, True])
    )
    return markdown_table(frame)


def alerts_by_type_and_source(touched: dict[object, list]) -> str:
    """Alerts a detect pass created or updated: how many and how many occurrences, per type/source/state."""
    rows = [
        {"type": type_, "source": source, "state": state, "occurrences": count}
        for type_, source, state, count in touched.values()
    ]
    if not rows:
        return "_no alerts_"
    frame = (
        pd.DataFrame(rows)
        .groupby(["type", "source", "state"], as_index=False)
        .agg(alerts=("occurrences", "size"), occurrences=("occurrences", "sum"))
        .sort_values(["occurrences", "type"], ascending=[False, True])
    )
    return markdown_table(frame)
