"""Charts of the hiring reports and the metadata that shows them (PNG inlined in markdown, as the UI renders it)."""

import base64
import io
from typing import Any

import pandas as pd
from dagster import MetadataValue
from matplotlib.figure import Figure

from etl_platform.defs.hr.reports import QUARTERS

CHART_YEARS = 4
TABLE_ROWS_SHOWN = 500


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG inlined as a markdown image (shown by the Dagster UI in asset metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _recent_years(years: pd.Series) -> list[int]:
    return sorted(int(y) for y in years.unique())[-CHART_YEARS:]


def hires_by_quarter_chart(report: pd.DataFrame) -> bytes:
    """Per recent year, hires per department stacked by quarter (the table splits them by job)."""
    years = _recent_years(report["year"])
    figure = Figure(figsize=(9, 3.6 * max(len(years), 1)), layout="constrained")
    axes = figure.subplots(max(len(years), 1), 1, squeeze=False)[:, 0]
    for ax, year in zip(axes, years):
        by_department = report[report["year"] == year].groupby("department")[QUARTERS].sum()
        bottom = pd.Series(0, index=by_department.index)
        for quarter in QUARTERS:
            ax.bar(by_department.index, by_department[quarter], bottom=bottom, label=quarter.upper())
            bottom = bottom + by_department[quarter]
        ax.set_title(f"Employees hired in {year}, per department and quarter")
        ax.set_ylabel("hired")
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    if not years:
        axes[0].set_title("No hires")
    return _png(figure)


def departments_above_mean_chart(counts: pd.DataFrame) -> bytes:
    """Per recent year, hires per department against the mean; those above it highlighted."""
    years = _recent_years(counts["year"])
    figure = Figure(figsize=(9, 3.6 * max(len(years), 1)), layout="constrained")
    axes = figure.subplots(max(len(years), 1), 1, squeeze=False)[:, 0]
    for ax, year in zip(axes, years):
        of_year = counts[counts["year"] == year].sort_values("hired", ascending=False)
        mean = of_year["hired"].mean()
        colours = ["tab:orange" if hired > mean else "tab:gray" for hired in of_year["hired"]]
        ax.barh(of_year["department"], of_year["hired"], color=colours)
        ax.axvline(mean, color="tab:blue", linestyle="--", label=f"mean {mean:.1f}")
        ax.invert_yaxis()
        ax.set_title(f"Employees hired in {year} per department (above the mean highlighted)")
        ax.set_xlabel("hired")
        ax.legend(fontsize="small")
    if not years:
        axes[0].set_title("No hires")
    return _png(figure)


def report_metadata(report: pd.DataFrame, chart: bytes, title: str) -> dict[str, Any]:
    """A report's materialization metadata: rows per year, the chart and the first rows."""
    shown = report.head(TABLE_ROWS_SHOWN)
    rows = shown.to_markdown(index=False) if len(shown) else "(no rows)"
    if len(report) > len(shown):
        rows += f"\n\nFirst {len(shown)} of {len(report)} rows."
    return {
        "dagster/row_count": len(report),
        "rows_by_year": MetadataValue.json(
            {str(year): int(n) for year, n in report["year"].value_counts().sort_index().items()}
        ),
        "chart": MetadataValue.md(png_markdown(chart, title)),
        "rows": MetadataValue.md(rows),
    }
