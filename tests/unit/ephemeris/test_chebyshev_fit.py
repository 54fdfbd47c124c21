"""Chebyshev fits: exactness on polynomials, derivatives, accuracy on orbital motion."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssassoc.core.ephemeris.chebyshev import (
    chebyshev_basis,
    chebyshev_nodes,
    check_points,
    evaluate_segments,
    fit_coefficients,
    segment_index_and_x,
)


def test_nodes_and_check_points_interleave() -> None:
    x = chebyshev_nodes(7)
    c = check_points(7)
    assert x.size == 8 and c.size == 9
    assert np.all(np.diff(x) > 0) and np.all(np.abs(x) < 1)
    assert c[0] == -1.0 and c[-1] == 1.0
    assert np.all((c[1:-1] > x[:-1]) & (c[1:-1] < x[1:]))


@settings(max_examples=50, deadline=None)
@given(
    degree=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    x=st.floats(-1.0, 1.0),
)
def test_polynomials_of_the_degree_are_reproduced_exactly(degree: int, seed: int, x: float) -> None:
    rng = np.random.default_rng(seed)
    coeffs = rng.normal(size=(3, degree + 1))
    nodes = chebyshev_nodes(degree)
    samples = np.polynomial.chebyshev.chebval(nodes, coeffs.T).T  # (n_nodes, 3)
    fitted = fit_coefficients(samples, degree)
    np.testing.assert_allclose(fitted, coeffs, atol=1e-12)
    # value and derivative against numpy's Chebyshev module
    pos, vel = evaluate_segments(fitted[None], np.array([x]), np.array([2.0]))  # length 2 -> d/dx
    np.testing.assert_allclose(pos[0], np.polynomial.chebyshev.chebval(x, coeffs.T), atol=1e-11)
    deriv = np.polynomial.chebyshev.chebder(coeffs.T)
    np.testing.assert_allclose(vel[0], np.polynomial.chebyshev.chebval(x, deriv), atol=1e-9)


def test_basis_scalar_and_vector_paths_agree() -> None:
    xs = np.linspace(-1, 1, 11)
    t_vec, d_vec = chebyshev_basis(xs, 9)
    for i, x in enumerate(xs):
        t_s, d_s = chebyshev_basis(float(x), 9)
        np.testing.assert_allclose(t_s, t_vec[i], atol=1e-14)
        np.testing.assert_allclose(d_s, d_vec[i], atol=1e-12)
    # known values: T_k(1) = 1, T'_k(1) = k^2
    t1, d1 = chebyshev_basis(1.0, 6)
    np.testing.assert_allclose(t1, 1.0)
    np.testing.assert_allclose(d1, np.arange(7) ** 2)


def test_circular_orbit_one_day_degree_7_is_sub_micro_arcsec() -> None:
    """A 1-day segment of a 2.5 AU circular orbit: the fit error is far below 1 mas at 1 AU."""
    degree, length = 7, 1.0
    omega = 0.01720209895 / 2.5**1.5  # rad/day

    def f(t_days: np.ndarray) -> np.ndarray:
        return 2.5 * np.stack([np.cos(omega * t_days), np.sin(omega * t_days), 0 * t_days], axis=-1)

    t_nodes = (chebyshev_nodes(degree) + 1) * length / 2
    c = fit_coefficients(f(t_nodes), degree)
    x = np.linspace(-1, 1, 101)
    pos, vel = evaluate_segments(np.broadcast_to(c, (101, 3, 8)), x, np.full(101, length))
    t = (x + 1) * length / 2
    err_mas = np.linalg.norm(pos - f(t), axis=1).max() / 1.0 * 206264806.247
    assert err_mas < 1e-3
    v_true = 2.5 * omega * np.stack([-np.sin(omega * t), np.cos(omega * t), 0 * t], axis=-1)
    np.testing.assert_allclose(vel, v_true, rtol=1e-9, atol=1e-12)


def test_segment_lookup_includes_the_span_end() -> None:
    k, x, length = segment_index_and_x(np.array([0.0, 0.49, 0.5, 1.0]), np.array([2, 2, 2, 2]), 1.0)
    assert k.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(x, [-1.0, 0.96, -1.0, 1.0])
    np.testing.assert_allclose(length, 0.5)
