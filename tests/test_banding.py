import math

import numpy as np
import pytest

from analysis.core.banding import banding_scores
from analysis.core.errors import AnalysisError


def _bands(out: int, cin: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Each neuron's channel vector depends on the row only: horizontal bands."""
    rows = np.random.default_rng(seed).standard_normal((out, cin, h, 1))
    return np.repeat(rows, w, axis=3)


def test_horizontal_bands_give_r_one_c_zero():
    s = banding_scores(_bands(6, 4, 5, 5))
    np.testing.assert_allclose(s["R"], 1.0)
    np.testing.assert_allclose(s["C"], 0.0, atol=1e-12)
    assert s["R_layer"] == pytest.approx(1.0)
    assert s["shape"] == [6, 4, 5, 5]


def test_vertical_bands_give_the_reverse():
    s = banding_scores(_bands(6, 4, 5, 5).transpose(0, 1, 3, 2))
    np.testing.assert_allclose(s["C"], 1.0)
    np.testing.assert_allclose(s["R"], 0.0, atol=1e-12)
    assert s["C_layer"] == pytest.approx(1.0)


def test_checkerboard_is_neither_and_shares_stay_in_unit_interval():
    w = np.indices((3, 3)).sum(0) % 2 * 2.0 - 1.0  # no row or column structure beyond the mean
    w = w - w.mean()
    s = banding_scores(np.broadcast_to(w, (1, 2, 3, 3)))
    assert s["R"][0] + s["C"][0] < 0.2
    rng = np.random.default_rng(3)
    r = banding_scores(rng.standard_normal((50, 3, 4, 6)))
    assert np.all((r["R"] >= 0) & (r["C"] >= 0) & (r["R"] + r["C"] <= 1 + 1e-12))


@pytest.mark.parametrize("h,w", [(3, 3), (5, 5), (3, 5)])
def test_random_gaussian_weights_average_the_baseline(h, w):
    # For i.i.d. Gaussian weights R ~ Beta((H-1)C/2, H(W-1)C/2), mean (H-1)/(HW-1); allow 5 standard
    # errors of the mean over n neurons.
    n, c = 3000, 8
    s = banding_scores(np.random.default_rng(1).standard_normal((n, c, h, w)))
    cases = (("R", s["baseline_R"], h - 1, h * (w - 1)), ("C", s["baseline_C"], w - 1, w * (h - 1)))
    for key, base, a_dim, b_dim in cases:
        a, b = a_dim * c / 2, b_dim * c / 2
        assert base == pytest.approx(a / (a + b))
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        assert abs(np.mean(s[key]) - base) < 5 * sd / math.sqrt(n)
    assert s["baseline_R"] == pytest.approx((h - 1) / (h * w - 1))


def test_banded_layer_stands_out_from_baseline():
    rng = np.random.default_rng(2)
    w = _bands(200, 8, 3, 3) + 0.3 * rng.standard_normal((200, 8, 3, 3))
    s = banding_scores(w)
    assert s["R_layer"] > 0.8 > s["baseline_R"]


def test_zero_and_constant_neurons_are_nan_and_excluded_from_pooling():
    w = np.zeros((3, 2, 3, 3))
    w[1] = 7.0  # constant kernel: no spatial variation
    w[2] = _bands(1, 2, 3, 3)[0]
    s = banding_scores(w)
    assert np.isnan(s["R"][0]) and np.isnan(s["R"][1]) and np.isnan(s["C"][1])
    assert s["R_layer"] == pytest.approx(1.0)


def test_layer_pooling_weights_neurons_by_their_total_variance():
    horiz = _bands(1, 2, 3, 3, seed=4)[0]
    vert = _bands(1, 2, 3, 3, seed=5)[0].transpose(0, 2, 1)
    t_h = ((horiz - horiz.mean(axis=(1, 2), keepdims=True)) ** 2).sum()
    t_v = ((vert - vert.mean(axis=(1, 2), keepdims=True)) ** 2).sum()
    s = banding_scores(np.stack([horiz, vert]))
    assert s["R_layer"] == pytest.approx(t_h / (t_h + t_v))
    assert s["C_layer"] == pytest.approx(t_v / (t_h + t_v))


def test_one_by_one_kernels_have_no_score_and_bad_shape_raises():
    s = banding_scores(np.ones((2, 3, 1, 1)))
    assert np.all(np.isnan(s["R"])) and math.isnan(s["baseline_R"]) and math.isnan(s["R_layer"])
    with pytest.raises(AnalysisError, match="banding_scores"):
        banding_scores(np.zeros((3, 3)))
