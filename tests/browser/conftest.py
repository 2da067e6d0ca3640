"""Real headless Chromium (Debian's `chromium`) driven by Playwright's Python package with
`executable_path`: no browser is ever downloaded. Skipped loudly without either."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("SKIPPED LOUDLY: browser tests need Playwright's Python package "
                    "(pip install -e '.[test]')")
    if CHROMIUM is None:
        pytest.skip("SKIPPED LOUDLY: browser tests need Debian's chromium "
                    "(apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                    args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()
