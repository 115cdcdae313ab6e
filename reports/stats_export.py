"""The appraisal tables as files 导出: CSV with exactly the columns and cells of `oabot stats
--csv` (so the two can be compared), and an XLSX workbook with a sheet per table (departments,
people, weeks, slowest steps) and Chinese headers. Pure apart from building bytes in memory.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import xlsxwriter

from reports.stats import CSV_COLUMNS

PEOPLE_HEADERS = (
    ("id", "编号"),
    ("name", "名称"),
    ("department", "部门"),
    ("handled", "处理件数"),
    ("median_working_hours", "用时中位（工作小时）"),
    ("p90_working_hours", "用时 P90（工作小时）"),
    ("median_hours", "用时中位（小时）"),
    ("p90_hours", "用时 P90（小时）"),
    ("overdue", "超时件数"),
    ("overdue_rate", "超时率"),
    ("reminders", "收到催办"),
    ("initiated", "发起件数"),
)
WEEK_HEADERS = (
    ("from", "开始"),
    ("to", "结束"),
    ("handled", "处理件数"),
    ("overdue", "超时件数"),
    ("initiated", "发起件数"),
    ("median_working_hours", "用时中位（工作小时）"),
)
STEP_HEADERS = (
    ("name", "步骤"),
    ("template", "模板"),
    ("handled", "处理件数"),
    ("median_working_hours", "用时中位（工作小时）"),
    ("p90_working_hours", "用时 P90（工作小时）"),
)


def rows_of(numbers: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The department or person rows of frozen or live numbers, each with its overdue rate."""
    key = "departments" if kind == "department" else "people"
    rates = numbers.get("overdue_rates", {})
    return [{**r, "overdue_rate": rates.get(f"{kind}:{r['id']}")} for r in numbers["report"][key]]


def stats_csv(numbers: dict[str, Any]) -> bytes:
    """UTF-8 with a byte-order mark, the columns of `oabot stats --csv`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for kind in ("department", "person"):
        for row in rows_of(numbers, kind):
            cells = {"kind": kind, **row}
            writer.writerow(["" if cells.get(c) is None else str(cells[c]) for c in CSV_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _sheet(book: Any, name: str, headers: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]) -> None:
    sheet = book.add_worksheet(name)
    bold = book.add_format({"bold": True})
    for c, (_, label) in enumerate(headers):
        sheet.write(0, c, label, bold)
        sheet.set_column(c, c, max(10, len(label) * 2))
    for r, row in enumerate(rows, start=1):
        for c, (key, _) in enumerate(headers):
            value = row.get(key)
            if value is not None:
                sheet.write(r, c, value)


def stats_xlsx(numbers: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    _sheet(book, "部门", PEOPLE_HEADERS, rows_of(numbers, "department"))
    _sheet(book, "人员", PEOPLE_HEADERS, rows_of(numbers, "person"))
    _sheet(book, "每周趋势", WEEK_HEADERS, list(numbers.get("weeks", [])))
    _sheet(book, "最慢步骤", STEP_HEADERS, list(numbers.get("slowest_steps", [])))
    book.close()
    return buffer.getvalue()
