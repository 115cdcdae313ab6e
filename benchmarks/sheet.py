"""Benchmark: drawing the approval sheet 审批单 (`reports.sheet.render_sheet`).

    python benchmarks/sheet.py               # a short seal sheet and a long one
    python benchmarks/sheet.py --rounds 20

Times the PDF of a typical sheet (7 fields, 5 steps) and of a long one (30 fields,
40 steps with opinions), each `--rounds` times, with the system's Noto Sans CJK; prints the
median and best in milliseconds, the page count and the size of the PDF (the font subset
embedded). The web handlers run this off the event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pypdfium2  # noqa: E402

from reports.sheet import (  # noqa: E402
    Sheet,
    SheetRow,
    SheetStep,
    find_cjk_font,
    render_sheet,
    sheet_digest,
    verify_url,
)


def _sheet(fields: int, steps: int) -> Sheet:
    return Sheet(
        request_id="20261123-04eb1b00",
        title="公章 用章 · 签署与上海某某建设工程有限公司的年度框架合同",
        template_name="用章申请",
        status="已通过",
        initiator="吴昊",
        created_at="2026-11-23 10:00",
        finished_at="2026-11-24 16:30",
        doc_number=None,
        fields=tuple(
            SheetRow(f"字段{i}", "用印文件：框架合同第" + str(i) + "版" * (i % 7)) for i in range(fields)
        ),
        steps=tuple(
            SheetStep(f"第{i}步审批", "王芳", "同意", "同意用印，注意登记" * (i % 4), "2026-11-24 10:00")
            for i in range(steps)
        ),
        trail_head="12:" + "a" * 64,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    font = find_cjk_font()
    print(f"font: {font}")
    for name, sheet in (
        ("short (7 fields, 5 steps)", _sheet(7, 5)),
        ("long (30 fields, 40 steps)", _sheet(30, 40)),
    ):
        url = verify_url("https://oa.example.cn", sheet.request_id, sheet_digest(sheet))
        times = []
        pdf = b""
        for _ in range(args.rounds):
            started = time.perf_counter()
            pdf = render_sheet(sheet, font=font, verify=url, printed_at="2026-11-30 12:00")
            times.append((time.perf_counter() - started) * 1000)
        pages = len(pypdfium2.PdfDocument(pdf))
        print(
            f"{name}: median {statistics.median(times):.0f} ms, best {min(times):.0f} ms, "
            f"{pages} page(s), {len(pdf) / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
