"""Headless Chromium from the system packages, driven by Playwright, for the page tests: every
request that would leave the server is refused and recorded, and console errors are collected."""

import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("NTKDYN_SCREENSHOTS", "test-artifacts/pages"))
"""Where the page tests save a screenshot of each page (`make screenshots`: docs/screenshots)."""
PALETTE = 128


def chromium_path() -> str:
    """The system Chromium; the test is skipped without one, or fails where CI requires it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("NTKDYN_REQUIRE_BROWSER"):
            pytest.fail("no chromium on PATH: apt-get install chromium")
        pytest.skip("no chromium on PATH (apt-get install chromium); CI installs it")
    return found


@dataclass
class Visit:
    """One browser page against the server at `base`: what it tried to fetch from elsewhere and
    what it logged as an error."""

    page: object
    base: str
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def clean(self) -> None:
        """No request left the server and nothing was logged as an error."""
        assert self.outside == [], f"requests to other hosts: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"

    def screenshot(self, name: str) -> Path:
        """The whole page as `SCREENSHOTS/<name>.png`, in a 128-colour palette (a third of the
        bytes)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        shot = self.page.screenshot(full_page=True)  # type: ignore[attr-defined]
        image = Image.open(io.BytesIO(shot)).convert("RGB")
        image.quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        return path


def visit(chromium: object, base: str, token: str | None) -> Visit:
    """A fresh browser context on `base` (token in its local storage when given) whose requests
    to any other origin are aborted and recorded."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    origin = urlsplit(base).netloc
    visit = Visit(page=None, base=base)

    def guard(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        scheme, netloc = urlsplit(url)[:2]
        if scheme in ("data", "blob") or netloc == origin:
            route.continue_()  # type: ignore[attr-defined]
        else:
            visit.outside.append(url)
            route.abort()  # type: ignore[attr-defined]

    context.route("**/*", guard)
    if token is not None:
        context.add_init_script(f"window.localStorage.setItem('ntkdyn.token', {token!r});")
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and visit.errors.append(message.text))
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    visit.page = page
    return visit
