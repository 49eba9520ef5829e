"""The pages: a job list and a page per job that draws its result, served by the API itself.
Every asset ships in the package (plotly.min.js from the plotly wheel), so they work offline; the
pages hold no data, their script reads the JSON API with the token kept in the browser."""

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from schemas import JobStatus
from service.tables import TABLES

PAGES = Path(__file__).parent.parent / "pages"
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
STATIC = "/ui/static"
SECURITY = {
    # scripts only from here; plotly sets inline styles; nothing may be fetched from elsewhere
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
templates = Jinja2Templates(directory=PAGES / "templates")
router = APIRouter(include_in_schema=False)


def page(request: Request, template: str, **context: Any) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return templates.TemplateResponse(
        request, template, {"root": root, "static": root + STATIC, **context}, headers=SECURITY
    )


@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse(request.scope.get("root_path", "") + "/ui")


@router.get("/ui", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    """The job list: filters by kind, status and owner, newest first, a page at a time."""
    return page(request, "jobs.html", kinds=list(TABLES), statuses=[status.value for status in JobStatus])


@router.get("/ui/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request, job_id: Annotated[str, PathParameter(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
) -> HTMLResponse:
    """One job: its state, live while it runs, its error if it failed, its figures if it succeeded."""
    return page(request, "job.html", job_id=job_id)


@router.get("/ui/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html")


@router.get(f"{STATIC}/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def install_pages(app: FastAPI) -> None:
    """The pages' routes and their static files."""
    app.include_router(router)
    app.mount(STATIC, StaticFiles(directory=PAGES / "static"), name="static")
