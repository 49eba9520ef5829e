"""The SDP's tightness, checkable from the result (SCIENCE.md section 6, Bartan & Pilanci 2021).

A researcher who solved the polynomial SDP asks for its blocks Z and Z' and expects: their
eigenvalues, largest first, to be those of the returned matrices; each block's numerical rank to
be the number of neurons read off it; and the solution to be the lift of the recovered net, Z =
sum_{alpha_j > 0} alpha_j [u_j; 1][u_j; 1]^T (so tr Z = 2 sum alpha_j and the penalty is
beta/2 (tr Z + tr Z')), which is what tightness means. CPU, float64.
"""

import numpy as np
import pytest

from schemas import ConvexResult, ConvexSpec
from service.figures import figures
from service.tables import tables
from workers.compute import run_experiment

POLY_20 = {
    "kind": "convex",
    "program": {"name": "polynomial_sdp", "a": 1.0, "b": 1.0, "c": 0.0, "return_matrices": True},
    "dataset": {"name": "sphere", "n": 20, "d": 3, "labels": {"rule": "relu_teacher", "k": 3}},
    "compare": [],
}
POLY_60 = {  # sigma(t) = t^2 in d = 8: every positive eigenvalue read off gave 15 neurons, the rank 10
    **POLY_20,
    "program": {"name": "polynomial_sdp", "a": 1.0, "b": 0.0, "c": 0.0, "return_matrices": True},
    "dataset": {"name": "sphere", "n": 60, "d": 8, "labels": {"rule": "relu_teacher", "k": 3}},
}


def convex(body: dict, **changes: object) -> ConvexResult:
    result = run_experiment(ConvexSpec.model_validate({**body, **changes}))
    assert isinstance(result, ConvexResult)
    return result


def lift(result: ConvexResult, sign: float) -> np.ndarray:
    """sum over the recovered neurons with sign(alpha_j) = sign of |alpha_j| [u_j; 1][u_j; 1]^T."""
    d = result.d
    Z = np.zeros((d + 1, d + 1))
    for neuron in result.recovery.neurons:
        if np.sign(neuron.output) == sign:
            v = np.append(neuron.weights, 1.0)
            Z += abs(neuron.output) * np.outer(v, v)
    return Z


SMALL_BETA = {**POLY_60, "beta": 1e-5}  # a floor 2 tolerance / beta on every rank cut a true direction


@pytest.mark.parametrize("body", [POLY_20, POLY_60, SMALL_BETA], ids=["n20-d3", "n60-d8", "beta-1e-5"])
def test_each_block_reports_the_spectrum_of_the_returned_matrix_and_its_rank(body: dict) -> None:
    """Eigenvalues: numpy's eigvalsh of the returned (exactly symmetric) matrix, descending. The
    ranks count the eigenvalues above the threshold, which separates the solution's directions
    from the solver's noise by orders of magnitude (measured: counted >= 0.012 lambda_max, the
    rest <= 8e-10 lambda_max; asserted: 100 x the threshold and 1e-8 lambda_max), and equal the
    neurons read off each block (POLY_20: 3 and 1; POLY_60: 5 and 5, also at beta = 1e-5)."""
    result = convex(body)
    assert result.sdp is not None
    d = result.d
    positive = sum(neuron.output > 0 for neuron in result.recovery.neurons)
    assert [block.name for block in result.sdp.matrices] == ["Z", "Z'"]
    largest = max(block.eigenvalues[0] for block in result.sdp.matrices)
    for block, neurons in zip(
        result.sdp.matrices, (positive, result.recovery.active - positive), strict=True
    ):
        M = np.array(block.matrix)
        assert M.shape == (d + 1, d + 1) and np.array_equal(M, M.T)
        assert block.eigenvalues == pytest.approx(np.linalg.eigvalsh(M)[::-1], rel=0, abs=1e-15)
        values = np.array(block.eigenvalues)
        assert block.rank == int((values > result.sdp.threshold).sum()) == block.neurons == neurons
        assert 1 <= block.rank <= d + 1
        assert values[: block.rank].min() >= 100 * result.sdp.threshold
        assert np.abs(values[block.rank :]).max(initial=0) <= 1e-8 * largest
    assert result.recovery.active <= 2 * (d + 1)  # SCIENCE.md: at most 2 (d + 1) neurons


@pytest.mark.parametrize("body", [POLY_20, POLY_60], ids=["n20-d3", "n60-d8"])
def test_the_solution_is_the_lift_of_the_recovered_net(body: dict) -> None:
    """Z = sum_{alpha > 0} alpha [u; 1][u; 1]^T and Z' alike, entry by entry to 1e-8 (measured
    ~1e-9); tr Z1 = Z4 (the constraint); tr Z + tr Z' = 2 sum |alpha| = 2 penalty / beta."""
    result = convex(body)
    assert result.sdp is not None
    d = result.d
    for block, sign in zip(result.sdp.matrices, (1.0, -1.0), strict=True):
        Z = np.array(block.matrix)
        assert np.abs(Z - lift(result, sign)).max() <= 1e-8
        assert np.trace(Z[:d, :d]) == pytest.approx(Z[d, d], abs=1e-12)
        outputs = sum(abs(n.output) for n in result.recovery.neurons if np.sign(n.output) == sign)
        assert sum(block.eigenvalues) == pytest.approx(2 * outputs, abs=1e-8)


def test_a_nonsmooth_loss_reads_every_positive_eigenvalue_and_says_so() -> None:
    """l1 loss: the net over the numerical rank misses the optimum (the solver's smallest
    directions move residuals that sit at the kink), so the read-off falls back to every positive
    eigenvalue: more neurons than rank (measured 4 and 3 against 3 and 1), still the exact lift."""
    result = convex(POLY_20, loss="l1")
    assert result.sdp is not None
    assert "every positive eigenvalue" in result.recovery.method
    assert result.recovery.error <= result.tolerance
    for block, sign in zip(result.sdp.matrices, (1.0, -1.0), strict=True):
        assert block.neurons >= block.rank
        assert np.abs(np.array(block.matrix) - lift(result, sign)).max() <= 1e-7


def test_a_zero_solution_has_rank_zero() -> None:
    """beta = 100 makes the zero net optimal: both blocks are the solver's noise, under the
    threshold's floor 2 tolerance / beta, and no neuron is read off."""
    result = convex(POLY_20, beta=100.0)
    assert result.sdp is not None and result.recovery.active == 0
    assert [block.rank for block in result.sdp.matrices] == [0, 0]
    assert result.sdp.threshold >= 2 * result.tolerance / 100.0


def test_matrices_only_when_asked_and_the_report_only_for_the_sdp() -> None:
    result = convex(POLY_20, program={**POLY_20["program"], "return_matrices": False})
    assert result.sdp is not None and all(block.matrix is None for block in result.sdp.matrices)
    assert "sdp_entries" not in tables(result.model_dump(mode="json"))
    relu = convex({"kind": "convex", "compare": []})
    assert relu.sdp is None and "sdp_blocks" not in tables(relu.model_dump(mode="json"))


def test_the_tables_and_figure_hold_the_report() -> None:
    result = convex(POLY_20)
    document = result.model_dump(mode="json")
    found = tables(document)
    assert result.sdp is not None
    blocks = found["sdp_blocks"]
    assert blocks.columns["block"] == ["Z", "Z'"]
    assert blocks.columns["rank"] == [block.rank for block in result.sdp.matrices]
    assert blocks.columns["neurons"] == [block.neurons for block in result.sdp.matrices]
    eigenvalues = found["sdp_eigenvalues"]
    assert eigenvalues.columns["eigenvalue"] == [
        v for block in result.sdp.matrices for v in block.eigenvalues
    ]
    assert sum(eigenvalues.columns["counted"]) == sum(block.rank for block in result.sdp.matrices)
    entries = found["sdp_entries"]
    assert len(entries) == 2 * (result.d + 1) ** 2
    assert entries.columns["value"][: (result.d + 1) ** 2] == [
        v for row in result.sdp.matrices[0].matrix or [] for v in row
    ]
    (spectrum,) = [figure for figure in figures(document) if figure.name == "sdp-spectrum"]
    assert [series.name for series in spectrum.series] == ["Z", "Z'", "rank threshold"]
