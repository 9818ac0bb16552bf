"""Build the files the loader tests read: PDFs with fpdf2 and pypdf, text in old encodings.

Everything is made at test time, so a fresh clone needs no data files. The one thing
that cannot be made is a font with Chinese glyphs: :func:`find_cjk_font` looks for one
on the system (Debian: ``apt-get install fonts-wqy-zenhei``), and tests that need it
skip when there is none.
"""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

__all__ = [
    "BIG5_TEXTS",
    "CJK_FONT_HINT",
    "GB18030_TEXTS",
    "encrypt_pdf",
    "find_cjk_font",
    "make_cjk_pdf",
    "make_image_only_pdf",
    "make_pdf",
    "make_spaced_cjk_pdf",
]

CJK_FONT_HINT = "no font with Chinese glyphs found (Debian: apt-get install fonts-wqy-zenhei)"

# Short texts on purpose: general charset detectors fail on them.
GB18030_TEXTS = [
    "你好",
    "中文测试",
    "你好，世界！",
    "这是一个简体中文的文本文件。",
    "第3章 RAG系统：检索增强生成",
    "使用Python处理PDF文件的方法",
]
BIG5_TEXTS = [
    "臺灣",
    "茶的歷史",
    "你好，世界！",
    "茶起源於中國西南地區，已有數千年的飲用歷史。",
    "唐代陸羽撰寫了《茶經》",
    "使用Python處理PDF檔案的方法",
]

# Fonts fpdf2 can embed (TrueType outlines), most common first.
_KNOWN_CJK_FONTS = [
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
]


def find_cjk_font() -> Path | None:
    """A TrueType font on this system that has Chinese glyphs, or ``None``."""
    for name in _KNOWN_CJK_FONTS:
        if Path(name).is_file():
            return Path(name)
    if shutil.which("fc-list") is None:
        return None
    listed = subprocess.run(
        ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False
    ).stdout
    for line in listed.splitlines():
        candidate = Path(line.strip().rstrip(":"))
        # fpdf2 embeds TrueType; CFF-based .otf files are not reliably supported.
        if candidate.suffix.lower() in (".ttf", ".ttc") and candidate.is_file():
            return candidate
    return None


def make_pdf(path: Path, pages: list[str | None]) -> Path:
    """A PDF with one page per entry: the text, or only a drawn rectangle for ``None``."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text is None:
            pdf.rect(20, 20, 100, 60, style="F")
        else:
            pdf.multi_cell(0, 8, text)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_image_only_pdf(path: Path, pages: int = 1) -> Path:
    """A scan-like PDF: each page holds only an embedded image, no text."""
    from PIL import Image

    image = Image.new("L", (200, 100), color=200)
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.image(image, x=10, y=10, w=150)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_cjk_pdf(path: Path, font: Path, pages: list[str]) -> Path:
    """A PDF of Chinese text set in ``font``, one page per entry."""
    pdf = FPDF()
    pdf.add_font("cjk", fname=str(font))
    pdf.set_font("cjk", size=14)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    path.write_bytes(bytes(pdf.output()))
    return path


def make_spaced_cjk_pdf(path: Path, font: Path, text: str) -> Path:
    """Chinese characters placed one by one with gaps, as some producers lay them out.

    pypdf reads the gaps as spaces ("操 作 手 冊"), which the normaliser must remove.
    """
    pdf = FPDF()
    pdf.add_font("cjk", fname=str(font))
    pdf.set_font("cjk", size=14)
    pdf.add_page()
    x = 10.0
    for char in text:
        pdf.set_xy(x, 20)
        pdf.cell(text=char)
        x += 12
    path.write_bytes(bytes(pdf.output()))
    return path


def encrypt_pdf(source: Path, target: Path, password: str, algorithm: str) -> Path:
    """Copy ``source`` to ``target`` encrypted with ``algorithm`` ("AES-256", "RC4-128", ...).

    The owner password differs from the user password, so the empty password does not
    open the result.
    """
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm=algorithm)
    buffer = BytesIO()
    writer.write(buffer)
    target.write_bytes(buffer.getvalue())
    return target
