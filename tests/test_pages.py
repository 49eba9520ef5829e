"""The pages in a real headless Chromium against a live stack: each loads with no console error
and no request leaving the server, draws the figures its kind returns, follows a running job
live, shows a failed job's error; /docs and /redoc work offline. A screenshot of each page is
saved (tests/browser.py: SCREENSHOTS)."""

from collections.abc import Iterator

import pytest

from schemas.examples import SPEC_EXAMPLES

from .browser import CHROMIUM_ARGS, Visit, chromium_path, visit
from .conftest import Stack, admin_token
from .results import SPECS
from .test_api import slow

pytestmark = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)  # pages know no backend
DRAWN = """() => [...document.querySelectorAll('#figures figure')].map((box) => {
  const plot = box.querySelector('.js-plotly-plot');
  return {name: box.dataset.name, traces: plot.data.map((trace) => trace.name),
          drawn: plot.querySelectorAll('.scatterlayer .trace').length,
          points: plot.querySelectorAll('.scatterlayer .point').length};
})"""
"""Per figure on the page: its name, its traces' names, how many traces its SVG holds, and how
many markers it draws."""
SWEEP = {
    "kind": "sweep",
    "base": {**SPECS["kernel"], "return_matrix": False},
    "axes": [{"path": "dataset.n", "values": [12, 16]}, {"path": "dataset.seed", "values": [1, 2]}],
    "metrics": [{"name": "lambda_min", "path": "spectrum.lambda_min"}],
}
FIGURES = {
    "kernel": {"spectrum", "label-energy", "widths"},
    "train": {"loss", "weight-change", "pattern-flips", "test-loss"},
    "ode": {"trajectories", "loss", "modes", "discrete-gap", "widths"},
    "landscape": {"census", "frequency", "hessian"},
    "convex": {"objective", "neurons"},
    "sweep": {"lambda_min-vs-dataset.n", "lambda_min-vs-dataset.seed"},
}
"""The figures each kind's page must draw (the issue's list)."""


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


@pytest.fixture(scope="module")
def finished(stack: Stack) -> dict[str, str]:
    """A succeeded job of every kind (a small sweep of kernels among them), by kind."""
    specs = {**SPECS, "sweep": SWEEP}
    ids = {kind: stack.submit(spec)["id"] for kind, spec in specs.items()}
    for job_id in ids.values():
        assert stack.wait(job_id, timeout=180)["status"] == "succeeded"
    return ids


def job_page(chromium: object, served: str, token: str, job_id: str) -> Visit:
    shown = visit(chromium, served, token)
    shown.page.goto(f"{served}/ui/jobs/{job_id}")  # type: ignore[attr-defined]
    return shown


def test_the_job_list_filters_and_links_to_each_job(
    stack: Stack, served: str, chromium: object, token: str, finished: dict[str, str]
) -> None:
    ids = [stack.submit(SPECS[kind], reuse=False)["id"] for kind in ("kernel", "landscape")]
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


def test_the_job_list_pages_back_and_forth(
    stack: Stack, served: str, chromium: object, token: str, finished: dict[str, str]
) -> None:
    first = stack.client.get("/v1/jobs", params={"limit": 2}).json()
    second = stack.client.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    shown = visit(chromium, served, token)
    page = shown.page
    page.goto(f"{served}/ui?limit=2")
    page.wait_for_selector("body[data-ready=true]")

    def listed() -> list[str | None]:
        return [link.get_attribute("title") for link in page.locator("#jobs tbody a").all()]

    assert listed() == [job["id"] for job in first["items"]] and page.locator("#newer").is_hidden()
    page.click("#older")
    page.wait_for_url("**cursor=*")
    page.wait_for_selector("body[data-ready=true]")
    assert listed() == [job["id"] for job in second["items"]]
    page.click("#newer")
    page.wait_for_url(f"{served}/ui?limit=2")
    page.wait_for_selector("body[data-ready=true]")
    assert listed() == [job["id"] for job in first["items"]]
    shown.clean()


def test_signing_in_with_a_token(stack: Stack, served: str, chromium: object, token: str) -> None:
    shown = visit(chromium, served, None)
    page = shown.page
    page.goto(f"{served}/ui")
    page.wait_for_url("**/ui/login?next=*")
    shown.screenshot("login")
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


@pytest.mark.parametrize("kind", [*SPECS, "sweep"])
def test_each_kind_draws_its_figures(
    stack: Stack, served: str, chromium: object, token: str, finished: dict[str, str], kind: str
) -> None:
    job_id = finished[kind]
    served_figures = stack.client.get(f"/v1/jobs/{job_id}/figures").json()
    expected = [
        {"name": shown["name"], "traces": [trace["name"] for trace in shown["figure"]["data"]]}
        for shown in served_figures["figures"]
    ]
    assert {figure["name"] for figure in expected} >= FIGURES[kind]
    shown = job_page(chromium, served, token, job_id)
    page = shown.page
    page.wait_for_selector("body[data-drawn=true]")
    drawn = page.evaluate(DRAWN)
    assert [{"name": one["name"], "traces": one["traces"]} for one in drawn] == expected
    assert all(one["drawn"] == len(one["traces"]) > 0 for one in drawn), drawn
    for shown_figure, one in zip(served_figures["figures"], drawn, strict=True):  # markers on the axes
        markers = [
            y
            for trace in shown_figure["figure"]["data"]
            if "markers" in trace["mode"]
            for y in trace["y"]
            if y is not None and y > 0
        ]
        assert one["points"] >= (1 if markers else 0), (kind, one["name"])
    tables = page.locator("#tables table").all()
    assert [table.get_attribute("data-name") for table in tables] == [
        t["name"] for t in served_figures["tables"]
    ]
    if kind == "sweep":
        rows = page.locator("#tables table[data-name=points] tbody tr").count()
        assert rows == len(served_figures["tables"][0]["rows"]) == 4
        child = page.locator("#tables table[data-name=points] tbody a").first
        points = served_figures["tables"][0]
        assert child.get_attribute("title") == points["rows"][0][points["header"].index("job")]
    shown.screenshot(f"job-{kind}")
    shown.clean()


def test_a_running_job_updates_live_then_draws(
    stack: Stack, served: str, chromium: object, token: str
) -> None:
    job_id = stack.submit(slow(seed=300))["id"]
    shown = job_page(chromium, served, token, job_id)
    page = shown.page
    # the message comes from the event stream while the job runs: its progress reports neurons
    page.wait_for_selector("#message:has-text('neurons')")
    width = page.evaluate("document.getElementById('bar').style.width")
    assert width not in ("", "0%", "100%")
    shown.screenshot("job-running")
    page.wait_for_selector("body[data-drawn=true]", timeout=60_000)
    assert page.locator("#facts .status").inner_text() == "succeeded"
    assert page.locator("#figures figure").count() >= 1
    shown.clean()


def test_a_failed_job_shows_its_error(stack: Stack, served: str, chromium: object, token: str) -> None:
    tiny = {"name": "inline", "X": [[1e-200, 0.0], [0.0, 1e-200]], "y": [1.0, -1.0]}  # x.x underflows
    job_id = stack.submit({"kind": "kernel", "dataset": tiny})["id"]
    assert stack.wait(job_id)["status"] == "failed"
    shown = job_page(chromium, served, token, job_id)
    page = shown.page
    page.wait_for_selector("body[data-ready=true]")
    assert "the kernel is zero" in page.inner_text("#error")
    assert page.locator("#facts .status").inner_text() == "failed"
    assert page.locator("#figures figure").count() == 0 and page.locator("#downloads").is_hidden()
    shown.screenshot("job-failed")
    shown.clean()


def test_swagger_offers_a_request_example_per_kind(served: str, chromium: object) -> None:
    shown = visit(chromium, served, None)
    page = shown.page
    page.goto(f"{served}/docs#/jobs/submit_v1_jobs_post")
    page.wait_for_selector(".examples-select select", timeout=30_000)
    options = page.locator(".examples-select select option").all_inner_texts()
    assert [option.split(":")[0] for option in options] == list(SPEC_EXAMPLES)
    shown.clean()
