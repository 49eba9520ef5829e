"""A result as figures, on real documents of every kind: each figure draws exactly the document's
numbers (replicate means inside their min-max band, the fitted lines through them with the
result's slopes), survives Plotly's JSON without a NaN, and renders as PNG and SVG."""

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.figures import Figure, PlotExtraMissing, Series, figures, image_format, plotly, render, select
from service.tables import tables

from .results import KINDS, real_result

NAMES = {
    "kernel": ["spectrum", "label-energy", "widths"],
    "train": ["loss", "weight-change", "pattern-flips", "test-loss"],
    "ode": ["trajectories", "loss", "modes", "discrete-gap", "widths"],
    "landscape": ["census", "frequency", "hessian"],
    "convex": ["objective", "neurons"],
    "sweep": ["test_mse-vs-network.depth", "test_mse-vs-width"],
}


def named(found: list[Figure], name: str) -> Figure:
    (figure,) = select(found, [name])
    return figure


def series(figure: Figure, name: str) -> Series:
    (found,) = [one for one in figure.series if one.name == name]
    return found


def log_slope(x: list, y: list) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def gaps(values: list[float | None]) -> list[bool]:
    return [value is None for value in values]


def numbers(values: list[float | None]) -> list[float]:
    return [value for value in values if value is not None]


def test_each_kind_has_its_figures() -> None:
    for kind in KINDS:
        found = figures(real_result(kind))
        assert [figure.name for figure in found] == NAMES[kind], kind
        assert all(figure.series for figure in found), kind


def test_optional_data_leaves_its_figure_out() -> None:
    kernel = copy.deepcopy(real_result("kernel")) | {"empirical": None}
    assert "widths" not in [figure.name for figure in figures(kernel)]
    ode = copy.deepcopy(real_result("ode")) | {"parameter_space": None}
    for flow in ode["dynamics"]:
        flow["discrete"] = None
        del flow["integrated"]["residual_norm"]  # a result stored before the field existed
    found = figures(ode)
    assert [figure.name for figure in found] == ["trajectories", "loss", "modes"]
    assert [line.name for line in named(found, "trajectories").series] == ["gd_flow", "heavy_ball"]
    train = copy.deepcopy(real_result("train"))
    for optimizer in train["optimizers"]:
        for run in optimizer["runs"]:
            del run["record"]["test_loss"]
    assert [figure.name for figure in figures(train)] == ["loss", "weight-change", "pattern-flips"]


def test_kernel_spectrum_and_the_width_fits() -> None:
    result = real_result("kernel")
    found = figures(result)
    spectrum = named(found, "spectrum")
    assert spectrum.y_log and series(spectrum, "eigenvalue").y == result["spectrum"]["eigenvalues"]
    energy = named(found, "label-energy")
    assert series(energy, "cumulative").y == result["cumulative_energy"]
    assert series(energy, "per direction").y == result["label_energy"]

    widths = named(found, "widths")
    assert widths.x_log and widths.y_log
    rows = result["empirical"]["rows"]
    m = np.array([row["width"] for row in rows], dtype=float)
    mean = np.array([row["relative_frobenius"]["mean"] for row in rows])
    std = np.array([row["relative_frobenius"]["std"] for row in rows])
    frobenius = series(widths, "|H_m - H_inf|_F / |H_inf|_F")
    assert frobenius.x == m.tolist() and frobenius.y == mean.tolist()
    assert frobenius.low == (mean - std).tolist() and frobenius.high == (mean + std).tolist()
    # the theory's line: c m^-1/2 with c the least-squares fit of log mean = log c - log(m)/2
    c = math.exp(float(np.mean(np.log(mean) + 0.5 * np.log(m))))
    assert series(widths, "c m^-1/2").y == pytest.approx((c * m**-0.5).tolist(), rel=1e-12)
    # the fitted line: the least-squares line of log mean on log m, whose slope the result holds
    slope, intercept = np.polyfit(np.log(m), np.log(mean), 1)
    assert result["empirical"]["width_exponent"] == pytest.approx(slope, rel=1e-9)
    expected = np.exp(intercept) * m**slope
    assert series(widths, "fitted c m^p").y == pytest.approx(expected.tolist(), rel=1e-9)


def test_train_losses_are_replicate_means_with_fits_and_predictions() -> None:
    result = real_result("train")
    loss = named(figures(result), "loss")
    assert loss.y_log and not loss.x_log
    for run, optimizer in zip(("gd[0]", "heavy_ball", "gd[2]"), result["optimizers"], strict=True):
        records = [outcome["record"] for outcome in optimizer["runs"]]
        at: dict[float, list[float]] = {}
        for record in records:
            for step, value in zip(record["step"], record["train_loss"], strict=True):
                at.setdefault(step, []).append(value)
        mean = series(loss, run)
        assert mean.x == sorted(at)
        end = min(record["step"][-1] for record in records)
        means = [
            sum(at[step]) / len(at[step]) if step <= end and len(at[step]) == len(records) else None
            for step in sorted(at)
        ]
        assert gaps(mean.y) == gaps(means) and numbers(mean.y) == pytest.approx(numbers(means), rel=1e-15)
        assert mean.low is not None and mean.high is not None
        drawn = [
            (low, y, high) for low, y, high in zip(mean.low, mean.y, mean.high, strict=True) if y is not None
        ]
        assert all(low <= y <= high for low, y, high in drawn)
        assert mean.low == [min(at[step]) for step in sorted(at)]

        (piece,) = optimizer["runs"][0]["fit"]["pieces"]
        assert piece["model"] == "linear"
        fit = series(loss, f"{run} linear fit")
        assert fit.group == run and piece["start_step"] <= min(fit.x) and max(fit.x) <= piece["stop_step"]
        ratios = [b / a for a, b in zip(fit.y, fit.y[1:], strict=False)]
        steps = [b - a for a, b in zip(fit.x, fit.x[1:], strict=False)]
        assert ratios == pytest.approx([piece["rate"] ** k for k in steps], rel=1e-9)

        (analytic,) = [p["rate"] for p in optimizer["predicted"] if p["kernel"] == "analytic"]
        predicted = series(loss, f"{run} predicted")
        assert predicted.y[0] == mean.y[0]
        assert predicted.y == pytest.approx([mean.y[0] * analytic**k for k in predicted.x], rel=1e-9)

    # the mean stops where a replicate that converged sooner ends (at the step it reached the
    # tolerance, recorded off the grid); the band goes on over the other
    flips = series(named(figures(result), "pattern-flips"), "heavy_ball")
    short, long = sorted(
        (outcome["record"] for outcome in result["optimizers"][1]["runs"]),
        key=lambda record: record["step"][-1],
    )
    assert short["step"][-1] < long["step"][-1] and flips.x == sorted(set(short["step"]) | set(long["step"]))
    common = [step for step in short["step"] if step in long["step"]]
    both = [
        (short["pattern_flips"][short["step"].index(step)] + long["pattern_flips"][long["step"].index(step)])
        / 2
        for step in common
    ]
    assert [x for x, y in zip(flips.x, flips.y, strict=True) if y is not None] == common
    assert numbers(flips.y) == pytest.approx(both, rel=1e-15)
    after = [i for i, x in enumerate(flips.x) if x > short["step"][-1]]
    assert (
        [flips.low[i] for i in after]
        == [flips.high[i] for i in after]
        == long["pattern_flips"][-len(after) :]
    )


def test_ode_trajectories_gaps_and_widths() -> None:
    result = real_result("ode")
    found = figures(result)
    loss = named(found, "loss")
    for flow in result["dynamics"]:
        assert series(loss, flow["name"]).x == result["t"] and series(loss, flow["name"]).y == flow["loss"]
    drawn = named(found, "trajectories")
    assert drawn.y_log
    for flow in result["dynamics"]:
        name = flow["name"]
        assert series(drawn, name).y == flow["residual_norm"]
        integrated = series(drawn, f"{name} integrated")
        assert integrated.x == result["t"] and integrated.y == flow["integrated"]["residual_norm"]
        for row in flow["discrete"]["rows"]:
            steps = series(drawn, f"{name} discrete, lr {row['lr']:.3g}")
            assert (steps.x, steps.y, steps.mode) == (row["times"], row["residual_norm"], "markers")
    modes = named(found, "modes")
    first = result["dynamics"][0]["modes"][-1]
    assert series(modes, f"gd_flow mode {first['index']}").y == [abs(v) for v in first["residual"]]

    gaps = named(found, "discrete-gap")
    assert gaps.x_log and gaps.y_log
    for flow in result["dynamics"]:
        study = flow["discrete"]
        measured = series(gaps, flow["name"])
        assert measured.x == [row["lr"] for row in study["rows"]] and measured.y == [
            row["gap"] for row in study["rows"]
        ]
        (order,) = [one for one in gaps.series if one.name.startswith(f"{flow['name']} order")]
        assert log_slope(order.x, order.y) == pytest.approx(study["order"], rel=1e-9)

    (study,) = result["parameter_space"]
    widths = named(found, "widths")
    gap = series(widths, "gd_flow")
    assert gap.x == [row["width"] for row in study["rows"]]
    assert gap.high == [row["gap_mean"] + row["gap_std"] for row in study["rows"]]


def test_landscape_census_and_hessians() -> None:
    result = real_result("landscape")
    points = result["census"]["points"]
    found = figures(result)
    census = named(found, "census")
    for kind in {point["kind"] for point in points}:
        mine = [point for point in points if point["kind"] == kind]
        drawn = series(census, kind)
        assert drawn.mode == "markers"
        assert drawn.x == [p["starts"] for p in mine] and drawn.y == [p["loss"] for p in mine]
    hessian = named(found, "hessian")
    for number, point in enumerate(points):
        assert series(hessian, f"{number} {point['kind']}").y == point["eigenvalues"]
    frequency = named(found, "frequency")
    assert frequency.y_log
    for kind in {point["kind"] for point in points}:
        mine = [(n, p) for n, p in enumerate(points) if p["kind"] == kind]
        drawn = series(frequency, kind)
        assert drawn.bars and drawn.x == [f"{n}: {p['symmetry']['isotropy']}" for n, p in mine]
        assert drawn.y == [p["probability"]["count"] / result["census"]["starts"] for _, p in mine]
        assert all(lo < y < hi for lo, y, hi in zip(drawn.low, drawn.y, drawn.high, strict=True))
    counted = sum(p["probability"]["count"] for p in points) + result["census"]["did_not_converge"]["count"]
    assert counted == result["census"]["starts"]
    shown = plotly(frequency)
    for trace, one in zip(shown["data"], frequency.series, strict=True):  # error bars, no band traces
        assert trace["error_y"]["array"] == pytest.approx(
            [h - y for y, h in zip(one.y, one.high, strict=True)]
        )
        assert trace["error_y"]["arrayminus"] == pytest.approx(
            [y - lo for y, lo in zip(one.y, one.low, strict=True)]
        )
    points_only = copy.deepcopy(result)
    points_only["census"] |= {"starts": 0, "did_not_converge": None}
    for point in points_only["census"]["points"]:
        point["probability"] = None
    assert "frequency" not in [figure.name for figure in figures(points_only)]


def test_convex_runs_against_the_optimum_and_the_neurons() -> None:
    result = real_result("convex")
    found = figures(result)
    objective = named(found, "objective")
    optimum = series(objective, "optimum")
    assert optimum.y == [result["optimum"]] * 2 and optimum.x == [
        min(result["record_steps"]),
        max(result["record_steps"]),
    ]
    gd = series(objective, "gd")
    trajectories = [run["trajectory"] for run in result["comparison"][0]["runs"]]
    assert gd.y[0] == pytest.approx(sum(t[0] for t in trajectories) / len(trajectories), rel=1e-15)
    assert gd.low is not None and gd.high is not None
    assert all(low <= y <= high for low, y, high in zip(gd.low, gd.y, gd.high, strict=True) if y is not None)
    neurons = named(found, "neurons")
    recovered = result["recovery"]["neurons"]
    assert series(neurons, "alpha_j").y == [neuron["output"] for neuron in recovered]
    norms = [float(np.linalg.norm(neuron["weights"])) for neuron in recovered]
    assert series(neurons, "|u_j|").y == pytest.approx(norms, rel=1e-12)


def test_sweep_metrics_against_each_axis_without_list_metrics() -> None:
    result = real_result("sweep")
    found = figures(result)
    by_width = named(found, "test_mse-vs-width")
    assert [one.name for one in by_width.series] == ["network.depth=2", "network.depth=3"]
    depth3 = series(by_width, "network.depth=3")
    assert depth3.x == [8, 64] and depth3.y == [1 / 24, 1 / (3 * 64)]
    # widths 8 to 64 span less than a decade; test_mse from 1/192 to 1/16 more than one
    assert not by_width.x_log and by_width.y_log

    categorical = copy.deepcopy(result)
    for row in categorical["rows"][:4]:
        row["values"]["width"] = f"w{row['values']['width']}"
    (figure,) = select(figures(categorical), ["test_mse-vs-width"])
    assert series(figure, "network.depth=2").x == ["w8", "w64"]
    assert json.dumps(plotly(figure), allow_nan=False)
    assert plotly(figure)["layout"]["xaxis"]["type"] == "category"  # labels on a linear axis draw nothing


def test_plotly_json_names_the_series_and_their_bands() -> None:
    for kind in KINDS:
        for figure in figures(real_result(kind)):
            shown = plotly(figure)
            json.dumps(shown, allow_nan=False)
            expected = []
            for one in figure.series:
                expected += [f"{one.name} band"] * 2 if one.low is not None and not one.bars else []
                expected.append(one.name)
            assert [trace["name"] for trace in shown["data"]] == expected, (kind, figure.name)
            layout = shown["layout"]
            assert layout["meta"] == {"name": figure.name}
            labels = any(isinstance(x, str) for one in figure.series for x in one.x)
            assert layout["xaxis"]["type"] == ("category" if labels else "log" if figure.x_log else "linear")
            assert layout["yaxis"]["type"] == ("log" if figure.y_log else "linear")
            assert layout["yaxis"]["title"]["text"] == figure.y_label
    loss = plotly(named(figures(real_result("train")), "loss"))
    low, high, line = loss["data"][:3]
    assert "fill" not in low and high["fill"] == "tonexty" and not high["showlegend"]
    assert line["line"]["color"] == high["line"]["color"]


def test_plotly_writes_non_finite_numbers_as_none() -> None:
    figure = Figure(
        "f",
        "F",
        "x",
        "y",
        [Series("s", [0, 1, 2], [1.0, math.nan, math.inf], low=[0, 0, -math.inf], high=[2, 2, 2])],
    )
    shown = plotly(figure)
    assert shown["data"][2]["y"] == [1.0, None, None] and shown["data"][0]["y"] == [0.0, 0.0, None]
    json.dumps(shown, allow_nan=False)


def test_every_kind_renders_as_png_and_svg(tmp_path: Path) -> None:
    for kind in KINDS:
        found = figures(real_result(kind))
        render(found, tmp_path / f"{kind}.png")
        render(found[:1], tmp_path / f"{kind}.SVG")
        assert (tmp_path / f"{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in (tmp_path / f"{kind}.SVG").read_text()


def test_unknown_names_suffixes_and_kinds_are_clear_errors(tmp_path: Path) -> None:
    found = figures(real_result("kernel"))
    with pytest.raises(
        ValueError, match="no figure 'nope'; the figures of this result: spectrum, label-energy, widths"
    ):
        select(found, ["spectrum", "nope"])
    assert [figure.name for figure in select(found, ["widths", "spectrum"])] == ["widths", "spectrum"]
    with pytest.raises(ValueError, match=r"loss\.pdf: an image is \.png or \.svg, not \.pdf"):
        render(found, tmp_path / "loss.pdf")
    with pytest.raises(ValueError, match="not a name without suffix"):
        image_format(tmp_path / "loss")
    with pytest.raises(ValueError, match="a result of kind 'nope' has no figures"):
        figures({"kind": "nope"})


def test_without_matplotlib_rendering_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(PlotExtraMissing, match=r"pip install 'ntkdyn\[plot\]'"):
        render(figures(real_result("sweep")), tmp_path / "sweep.png")
    assert not (tmp_path / "sweep.png").exists()


def test_figures_import_neither_matplotlib_nor_torch() -> None:
    code = "import sys, service.figures; print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'torch', 'numpy'}))"
    assert (
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        == "[]\n"
    )


def test_a_dynamics_named_twice_is_told_apart_in_figures_and_tables() -> None:
    ode = copy.deepcopy(real_result("ode"))
    ode["dynamics"].append(copy.deepcopy(ode["dynamics"][1]))  # heavy_ball twice, as in the example
    expected = ["gd_flow", "heavy_ball[1]", "heavy_ball[2]"]
    assert [line.name for line in named(figures(ode), "loss").series] == expected
    drawn = [line.name for line in named(figures(ode), "trajectories").series if line.group]
    assert sorted(set(drawn)) == sorted(expected + [f"{name} integrated" for name in expected])
    for found in tables(ode).values():
        if "dynamics" in found.columns:
            assert list(dict.fromkeys(found.columns["dynamics"])) == expected
