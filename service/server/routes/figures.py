"""/v1/jobs/{id}/figures: a succeeded job's result as the figures and tables its page draws."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service import figures, tables

from ..deps import SucceededJobDep
from ..responses import A_RESULT, answers

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

SHOWN_TABLES: dict[str, dict[str, str]] = {"sweep": {"points": "Grid points and baselines"}}
"""Per kind: the tables shown beside its figures, by name, with their titles."""


class ShownFigure(BaseModel):
    name: str = Field(description="the figure's name, as `ntkdyn plot --figure` takes it")
    title: str
    figure: dict[str, Any] = Field(description="`data` and `layout`, as Plotly.newPlot takes them")


class ShownTable(BaseModel):
    name: str = Field(description="the table's name, as `?format=csv&table=` takes it")
    title: str
    header: list[str]
    rows: list[list[Any]]


class Shown(BaseModel):
    """What a job's page draws: its figures, and the tables shown beside them."""

    figures: list[ShownFigure]
    tables: list[ShownTable] = Field(description="a sweep's table of points; empty for other kinds")


@router.get("/{job_id}/figures", response_model=Shown, responses=answers(*A_RESULT))
def get_figures(job: SucceededJobDep) -> Shown:
    """The figures of a succeeded job's result as Plotly JSON (one trace per series, named as
    the series; a replicate band as two traces `<series> band` before it), and for a sweep its
    table of points."""
    found = tables.tables(job.result) if job.kind in SHOWN_TABLES else {}
    return Shown(
        figures=[
            ShownFigure(name=figure.name, title=figure.title, figure=figures.plotly(figure))
            for figure in figures.figures(job.result)
        ],
        tables=[
            ShownTable(name=name, title=title, header=found[name].header, rows=list(found[name].rows()))
            for name, title in SHOWN_TABLES.get(job.kind, {}).items()
        ],
    )
