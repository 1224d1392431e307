"""Fixtures for real-browser tests (Debian's /usr/bin/chromium via Playwright).

    @pytest.mark.browser
    @pytest.mark.lan
    async def test_guest(make_lan: MakeLan, launch_browser: LaunchBrowser) -> None:
        lan = make_lan(2)
        browser = await launch_browser(lan.hosts[1].name)   # Chromium inside host 2
        context = await new_context(browser)                # ignore_https_errors=True
        page = await context.new_page()
        await page.goto(f"https://{lan.hosts[0].ip}:8443/")

``launch_browser(None)`` runs Chromium in the root namespace (loopback tests).
``launch_firefox(host)`` runs headless Firefox ESR in a LAN host (tests/browser/firefox.py).
The LAN fixtures (``make_lan``, ``lan2``, ``make_internet``) are importable from here too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from tests.browser.chromium import launch_chromium
from tests.browser.firefox import FirefoxPage, firefox_missing
from tests.conftest import require_chromium
from tests.lan.conftest import lan2, make_internet, make_lan
from tests.lan.netns import Host

__all__ = [
    "LaunchBrowser",
    "LaunchFirefox",
    "lan2",
    "launch_browser",
    "launch_firefox",
    "make_internet",
    "make_lan",
]

LaunchBrowser = Callable[..., Awaitable[Browser]]
LaunchFirefox = Callable[[Host], Awaitable[FirefoxPage]]


@pytest.fixture
async def launch_browser() -> AsyncIterator[LaunchBrowser]:
    """Factory: ``await launch_browser(netns=None, **launch_kwargs) -> Browser``.

    One Playwright driver per test; every browser is closed afterwards.
    ``launch_browser.devices`` holds Playwright's device descriptors (phone emulation:
    ``new_context(browser, **launch_browser.devices["Pixel 7"])``).
    """
    require_chromium()
    browsers: list[Browser] = []
    async with async_playwright() as playwright:

        async def launch(netns: str | None = None, **kwargs: Any) -> Browser:
            browser = await launch_chromium(netns, playwright=playwright, **kwargs)
            browsers.append(browser)
            return browser

        launch.devices = playwright.devices  # type: ignore[attr-defined]
        try:
            yield launch
        finally:
            for browser in reversed(browsers):
                await browser.close()


@pytest.fixture
async def launch_firefox() -> AsyncIterator[LaunchFirefox]:
    """Factory: ``await launch_firefox(host) -> FirefoxPage`` (Firefox ESR in ``host``'s
    namespace, one tab); every Firefox is closed afterwards."""
    missing = firefox_missing()
    if missing is not None:
        pytest.skip(f"needs Firefox ESR: {missing}; bash scripts/install.sh --with-system")
    pages: list[FirefoxPage] = []

    async def launch(host: Host) -> FirefoxPage:
        page = await FirefoxPage.async_launch(host)
        pages.append(page)
        return page

    try:
        yield launch
    finally:
        for page in reversed(pages):
            await page.close()
