"""Fixtures for the loader tests; the files themselves are built in loader_fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from loader_fixtures import CJK_FONT_HINT, find_cjk_font


@pytest.fixture
def cjk_font() -> Path:
    """A system font with Chinese glyphs; the test skips without one."""
    font = find_cjk_font()
    if font is None:
        pytest.skip(CJK_FONT_HINT)
    return font


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """An empty folder for the test's input files."""
    folder = tmp_path / "docs"
    folder.mkdir()
    return folder
