"""16-bit quantised scores (server/quantized.py): each value within half a step of its code."""

from __future__ import annotations

import numpy as np
import pytest

from embedding_explorer.server.quantized import NOT_FINITE, STEPS, dequantize, quantize


def test_codes_round_trip_within_half_a_step_of_each_column_range() -> None:
    rng = np.random.default_rng(0)
    block = np.column_stack(
        [
            rng.normal(0, 1e-3, 10_000),  # tiny scale
            rng.normal(50, 400, 10_000),  # large scale, off centre
            np.full(10_000, 2.5),  # constant: no range at all
        ]
    ).astype(np.float32)
    block[[3, 9], 0] = [np.nan, np.inf]
    block[17, 1] = -np.inf
    q = quantize(block)
    assert q.codes.dtype == np.dtype("<u2") and q.codes.shape == block.shape

    values = block.astype(np.float64)
    finite = np.isfinite(values)
    lo = np.array([values[finite[:, j], j].min() for j in range(3)])
    hi = np.array([values[finite[:, j], j].max() for j in range(3)])
    np.testing.assert_array_equal(q.lo, lo)
    np.testing.assert_array_equal(q.hi, hi)
    # the stated bound: half a step of (hi - lo) / 65534, by an independent dequantisation
    step = (hi - lo) / 65534
    decoded = lo + q.codes.astype(np.float64) * step
    error = np.abs(decoded - values)[finite]
    bound = np.broadcast_to(step / 2, values.shape)[finite]
    assert np.all(error <= bound * (1 + 1e-9) + 1e-300)
    np.testing.assert_allclose(dequantize(q)[finite], decoded[finite], rtol=0, atol=0)
    # the ends of a range are exact, a value that is not finite has its own code
    for j in (0, 1):
        assert (q.codes[finite[:, j], j].min(), q.codes[finite[:, j], j].max()) == (0, STEPS)
    assert np.array_equal(np.flatnonzero(q.codes == NOT_FINITE), np.flatnonzero(~finite.ravel()))
    assert np.isnan(dequantize(q)[~finite]).all()
    assert (q.codes[:, 2] == 0).all() and (dequantize(q)[:, 2] == 2.5).all()


def test_the_bounds_header_gives_back_each_range_exactly() -> None:
    block = np.array([[0.1, -3.0], [0.7, 1e-7], [np.float32(1 / 3), 2.0]], dtype=np.float32)
    q = quantize(block)
    parsed = [float(v) for v in q.header().split(",")]
    assert parsed == [q.lo[0], q.hi[0], q.lo[1], q.hi[1]]
    assert parsed == [float(np.float32(0.1)), float(np.float32(0.7)), -3.0, 2.0]


def test_a_column_with_no_finite_value_is_all_not_finite() -> None:
    q = quantize(np.array([[np.nan, 1.0], [np.inf, 3.0]]))
    assert q.codes[:, 0].tolist() == [NOT_FINITE] * 2 and q.codes[:, 1].tolist() == [0, STEPS]
    assert (q.lo[0], q.hi[0]) == (0.0, 0.0)


def test_a_block_that_is_not_two_dimensional_is_refused() -> None:
    with pytest.raises(ValueError, match=r"an \(N, K\) block, got shape \(3,\)"):
        quantize(np.zeros(3))
