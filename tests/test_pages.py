"""The pages in a real headless Chromium against a live stack: each loads with no console error
and no request leaving the server, draws the figures its kind returns, follows a running job
live, shows a failed job's error; /docs and /redoc work offline. A screenshot of each page is
saved (tests/browser.py: SCREENSHOTS)."""

from collections.abc import Iterator

import pytest

from schemas.examples import SPEC_EXAMPLES

from .browser import CHROMIUM_ARGS, chromium_path, visit
from .conftest import Stack, admin_token
from .results import SPECS


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    return admin_token(stack.settings)


def test_the_job_list_filters_and_links_to_each_job(
    stack: Stack, served: str, chromium: object, token: str
) -> None:
    ids = [stack.submit(SPECS[kind])["id"] for kind in ("kernel", "landscape")]
    for job_id in ids:
        assert stack.wait(job_id)["status"] == "succeeded"
    shown = visit(chromium, served, token)
    page = shown.page
    page.goto(f"{served}/ui")
    page.wait_for_selector("body[data-ready=true]")
    links = page.locator("#jobs tbody a")
    assert [link.get_attribute("title") for link in links.all()][:2] == ids[::-1]  # newest first
    shown.screenshot("jobs")
    page.select_option("select[name=kind]", "kernel")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/ui?kind=kernel*")
    page.wait_for_selector("body[data-ready=true]")
    kinds = page.locator("#jobs tbody tr td:nth-child(2)").all_inner_texts()
    assert kinds and set(kinds) == {"kernel"}
    page.locator(f"#jobs a[title='{ids[0]}']").click()
    page.wait_for_url(f"**/ui/jobs/{ids[0]}")
    page.wait_for_selector("body[data-drawn=true]")
    shown.clean()


def test_signing_in_with_a_token(stack: Stack, served: str, chromium: object, token: str) -> None:
    shown = visit(chromium, served, None)
    page = shown.page
    page.goto(f"{served}/ui")
    page.wait_for_url("**/ui/login?next=*")
    page.fill("input[name=token]", "not-a-token")
    page.click("#login button")
    page.wait_for_selector("#problem:not([hidden])")
    assert page.inner_text("#problem") == "that token was not accepted"
    page.fill("input[name=token]", token)
    page.click("#login button")
    page.wait_for_url(f"{served}/ui")
    page.wait_for_selector("body[data-ready=true]")
    assert page.inner_text("#who") == "admin (admin)"
    # the 401 of the first visit was the only failed request; the browser logs it as an error
    assert all("401" in error for error in shown.errors)
    shown.errors.clear()
    shown.clean()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_work_offline(served: str, chromium: object, path: str) -> None:
    shown = visit(chromium, served, None)
    page = shown.page
    page.goto(served + path)
    selector = ".opblock" if path == "/docs" else "[data-section-id]"
    page.wait_for_selector(selector, timeout=30_000)
    assert page.locator(selector).count() >= 10
    shown.screenshot(path.strip("/"))
    shown.clean()


def test_swagger_offers_a_request_example_per_kind(served: str, chromium: object) -> None:
    shown = visit(chromium, served, None)
    page = shown.page
    page.goto(f"{served}/docs#/jobs/submit_v1_jobs_post")
    page.wait_for_selector(".examples-select select", timeout=30_000)
    options = page.locator(".examples-select select option").all_inner_texts()
    assert [option.split(":")[0] for option in options] == list(SPEC_EXAMPLES)
    shown.clean()
