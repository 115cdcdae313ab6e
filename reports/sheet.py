"""The printable approval sheet 审批单: one finished request on one (or more) A4 pages as PDF.

Pure given its inputs: a `Sheet` (the facts, already in words: labels, names, local times),
the path of a CJK font file and the verification URL to put in the QR code. It reads the font
file and nothing else; it decides nothing about who may print what (the services layer does)
and knows nothing of requests beyond the facts handed to it.

`sheet_digest` is the hash printed on the sheet and carried in its QR code: a SHA-256 over
every fact the sheet prints plus the head of the request's trail (the hash of its last event
and the number of events), so any later trail event, a corrected form or a changed decision
gives another digest and the verification page says the sheet no longer matches.

Chinese needs an embedded CJK font: `find_cjk_font` looks for Noto Sans CJK (Debian/Ubuntu
package fonts-noto-cjk) and a few other common places, and raises `CjkFontMissing`, which says
what to install, when there is none. Its text can be selected and copied in Chrome's viewer and
extracted with PDFium (pypdfium2); pdfminer (pdfplumber) does not read the encoding CMap that fpdf2
writes for a CID-keyed CFF font such as Noto Sans CJK, and finds no text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import qrcode
from fontTools.ttLib import TTCollection
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

# Where fonts-noto-cjk (and its relatives) put a CJK font; the first that exists is used.
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
INSTALL_HINT = (
    "没有找到中文字体，无法生成审批单。请安装 fonts-noto-cjk"
    "（Debian/Ubuntu：sudo apt-get install fonts-noto-cjk，或 make browser），"
    "或用 --font 指定一个 CJK 字体文件（.ttf/.otf/.ttc）。"
)
DIGEST_LENGTH = 32  # hex characters: 128 bits, short enough for a small QR code


class CjkFontMissing(RuntimeError):
    """No CJK font file: the sheet cannot show Chinese. The message says what to install."""

    def __init__(self, tried: Sequence[str]) -> None:
        super().__init__(INSTALL_HINT + " 已查找：" + "、".join(tried))
        self.tried = tuple(tried)


@dataclass(frozen=True)
class SheetRow:
    """One labelled line: a form field or a fact about the request, in words."""

    label: str
    text: str


@dataclass(frozen=True)
class SheetStep:
    """One person's part in one step: who, what they decided, their opinion, when."""

    step: str
    approver: str
    decision: str
    opinion: str
    at: str


@dataclass(frozen=True)
class SheetNote:
    """A comment 评论 on the request (not a decision): who, when, what."""

    who: str
    at: str
    text: str


@dataclass(frozen=True)
class Sheet:
    """Everything an approval sheet prints, already in words (local times, names, labels).

    `trail_head` (the last trail event's hash and the number of events) is not printed but is
    part of the digest, so the sheet stops matching when the trail grows.
    """

    request_id: str
    title: str
    template_name: str
    status: str
    initiator: str
    created_at: str
    finished_at: str
    doc_number: str | None
    fields: tuple[SheetRow, ...]
    steps: tuple[SheetStep, ...]
    trail_head: str
    notes: tuple[SheetNote, ...] = ()


def sheet_digest(sheet: Sheet) -> str:
    """The sheet's fingerprint: SHA-256 over its facts (canonical JSON), first 32 hex digits."""
    canonical = json.dumps(asdict(sheet), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


def verify_path(request_id: str, digest: str) -> str:
    """The verification page of a sheet, relative to the service's public URL."""
    return f"/verify/{request_id}/{digest}"


def verify_url(public_url: str, request_id: str, digest: str) -> str:
    """The URL the sheet's QR code encodes."""
    return public_url.rstrip("/") + verify_path(request_id, digest)


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR code of `data` as rows of dark (True) / light modules, quiet zone included."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(data)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def find_cjk_font(explicit: str | None = None, candidates: Sequence[str] = CJK_FONT_CANDIDATES) -> Path:
    """The CJK font to embed: `explicit` when given (it must exist), else the first candidate."""
    tried = [explicit] if explicit else list(candidates)
    for name in tried:
        path = Path(name)
        if path.is_file():
            return path
    raise CjkFontMissing(tried)


# -- drawing ----------------------------------------------------------------------------------
FONT = "cjk"
PAGE_WIDTH = 210.0  # A4, mm
MARGIN = 15.0
BODY = PAGE_WIDTH - 2 * MARGIN
QR_SIZE = 32.0  # mm
LABEL_WIDTH = 34.0
STEP_COLUMNS = (40.0, 26.0, 22.0, 60.0, 32.0)  # step, approver, decision, opinion, time
STEP_HEADINGS = ("审批步骤", "审批人", "处理结果", "审批意见", "处理时间")


class _SheetPdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"{self.footer_text}    第 {self.page_no()} 页 / 共 {{nb}} 页", align="C")
        self.set_text_color(0, 0, 0)


def simplified_chinese_face(font: Path) -> int:
    """Which face of a font collection (.ttc) to use: the Simplified Chinese one (its family
    name says SC), else the first. Noto Sans CJK's collection starts with the Japanese face,
    whose forms of some characters differ from those printed in China."""
    faces = [f["name"].getDebugName(1) or "" for f in TTCollection(str(font), lazy=True).fonts]
    return next((i for i, name in enumerate(faces) if name.endswith(" SC")), 0)


def _font(pdf: FPDF, font: Path) -> None:
    if font.suffix.lower() == ".ttc":
        pdf.add_font(FONT, fname=str(font), collection_font_number=simplified_chinese_face(font))
    else:
        pdf.add_font(FONT, fname=str(font))


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font(FONT, size=12)
    pdf.set_fill_color(235, 238, 243)
    pdf.cell(BODY, 8, " " + text, border=1, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _rows(pdf: FPDF, rows: Sequence[SheetRow]) -> None:
    pdf.set_font(FONT, size=10)
    pdf.set_fill_color(255, 255, 255)
    with pdf.table(
        col_widths=(LABEL_WIDTH, BODY - LABEL_WIDTH),
        width=BODY,
        first_row_as_headings=False,
        line_height=6.5,
        padding=1.5,
    ) as table:
        for row in rows:
            line = table.row()
            line.cell(row.label)
            line.cell(row.text or "—")


def _steps(pdf: FPDF, steps: Sequence[SheetStep]) -> None:
    pdf.set_font(FONT, size=9.5)
    pdf.set_fill_color(255, 255, 255)
    head_style = FontFace(emphasis="", fill_color=(245, 246, 248))
    with pdf.table(
        col_widths=STEP_COLUMNS, width=BODY, line_height=6, padding=1.5, headings_style=head_style
    ) as table:
        head = table.row()
        for name in STEP_HEADINGS:
            head.cell(name)
        for s in steps:
            line = table.row()
            for text in (s.step, s.approver, s.decision, s.opinion, s.at):
                line.cell(text or "—")


def _qr(pdf: FPDF, url: str, digest: str) -> None:
    matrix = qr_matrix(url)
    module = QR_SIZE / len(matrix)
    if pdf.get_y() + QR_SIZE + 8 > pdf.h - 18:
        pdf.add_page()
    top = pdf.get_y() + 4
    left = PAGE_WIDTH - MARGIN - QR_SIZE
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(left + c * module, top + r * module, module, module, style="F")
    pdf.set_xy(MARGIN, top + 2)
    pdf.set_font(FONT, size=10)
    text_width = BODY - QR_SIZE - 6
    pdf.multi_cell(
        text_width,
        6,
        "扫描右侧二维码核验：打开的页面会说明本审批单与系统中的当前记录是否一致。",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font(FONT, size=8)
    pdf.multi_cell(text_width, 5, f"核验码：{digest}\n{url}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + QR_SIZE))


def render_sheet(sheet: Sheet, *, font: Path, verify: str, printed_at: str) -> bytes:
    """The sheet as PDF bytes, the font embedded (subset); `verify` is the URL the QR encodes."""
    digest = sheet_digest(sheet)
    pdf = _SheetPdf(f"审批单 {sheet.request_id} · 打印于 {printed_at}")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(f"审批单 {sheet.title}")
    pdf.set_creator("oabot")
    pdf.alias_nb_pages()
    _font(pdf, font)
    pdf.add_page()
    pdf.set_font(FONT, size=18)
    pdf.cell(BODY, 11, f"{sheet.template_name}审批单", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=11)
    pdf.multi_cell(BODY, 6, sheet.title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    facts = [
        SheetRow("申请编号", sheet.request_id),
        *([SheetRow("文号", sheet.doc_number)] if sheet.doc_number else []),
        SheetRow("发起人", sheet.initiator),
        SheetRow("提交时间", sheet.created_at),
        SheetRow("办结时间", sheet.finished_at),
        SheetRow("审批结果", sheet.status),
    ]
    _heading(pdf, "基本信息")
    _rows(pdf, facts)
    _heading(pdf, "申请内容")
    _rows(pdf, sheet.fields)
    _heading(pdf, "审批记录")
    _steps(pdf, sheet.steps)
    if sheet.notes:
        _heading(pdf, "评论")
        _rows(pdf, [SheetRow(f"{n.who}\n{n.at}", n.text) for n in sheet.notes])
    _qr(pdf, verify, digest)
    return bytes(pdf.output())
