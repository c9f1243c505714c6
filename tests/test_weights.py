import numpy as np
import pytest

from analysis.core.errors import AnalysisError
from analysis.core.weights import dead_filters, first_layer_rgb, heatmap_tiles, top_inputs


def test_first_layer_rgb_per_filter_maps_zero_to_grey_and_extremes_to_0_1():
    w = np.zeros((2, 3, 2, 2))
    w[0, 0, 0, 0] = 2.0  # filter 0: strong red at (0, 0)
    w[0, 2, 1, 1] = -1.0  # and some negative blue at (1, 1)
    w[1, 1, 0, 1] = -0.01  # filter 1: weak negative green
    rgb = first_layer_rgb(w, "per_filter")
    assert rgb.shape == (2, 2, 2, 3)
    assert rgb[0, 0, 0, 0] == 1.0
    assert rgb[0, 1, 1, 2] == pytest.approx(0.25)
    assert rgb[0, 0, 1, 1] == 0.5  # zero weight is mid-grey
    assert rgb[1, 0, 1, 1] == 0.0  # weak filter still spans the full range on its own scale


def test_first_layer_rgb_shared_keeps_relative_strength():
    w = np.zeros((2, 3, 1, 1))
    w[0, 0] = 2.0
    w[1, 1] = -0.02
    rgb = first_layer_rgb(w, "shared")
    assert rgb[0, 0, 0, 0] == 1.0
    assert rgb[1, 0, 0, 1] == pytest.approx(0.5 - 0.5 * 0.01)


def test_first_layer_rgb_grey_input_is_replicated_and_zero_filter_is_grey():
    w = np.zeros((2, 1, 2, 2))
    w[0, 0, 0, 0] = -3.0
    rgb = first_layer_rgb(w)
    assert np.all(rgb[0, 0, 0] == 0.0)
    assert np.all(rgb[1] == 0.5)


def test_dead_filters_stay_grey_even_on_their_own_scale():
    # EfficientNet-Lite1's stem: 7 of 32 filters with max |w| below 5e-8 beside live ones near 1.
    w = np.zeros((3, 3, 3, 3))
    w[0, 0, 1, 1] = 1.0
    w[1, 2, 0, 0] = -0.3
    w[2, 1, 2, 2] = 4e-8
    assert dead_filters(w).tolist() == [False, False, True]
    for scaling in ("shared", "per_filter"):
        rgb = first_layer_rgb(w, scaling)
        assert np.abs(rgb[2] - 0.5).max() < 1e-6, scaling  # drawn dead, not as saturated as filter 0
    assert first_layer_rgb(w, "per_filter")[1, 0, 0, 2] == 0.0  # a weak live filter spans its own range
    assert first_layer_rgb(w)[1, 0, 0, 2] == pytest.approx(0.35)  # default: one scale for the model


def test_first_layer_rgb_rejects_bad_input():
    with pytest.raises(AnalysisError, match="first_layer_rgb"):
        first_layer_rgb(np.zeros((2, 4, 3, 3)))
    with pytest.raises(AnalysisError, match="scaling"):
        first_layer_rgb(np.zeros((2, 3, 3, 3)), "per_tile")
    with pytest.raises(AnalysisError, match="shape"):
        first_layer_rgb(np.zeros((3, 3, 3)))


def test_heatmap_tiles_share_one_scale_over_the_selection_only():
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (4, 5, 3, 3))
    w[3, 4, 1, 1] = 100.0  # outside the selection: must not set the scale
    out = heatmap_tiles(w, outs=[0, 2], ins=[1, 3, 4])
    tiles = out["tiles"]
    assert tiles.shape == (2, 3, 3, 3)
    sel = w[[0, 2]][:, [1, 3, 4]]
    assert out["scale"] == pytest.approx(np.abs(sel).max())
    np.testing.assert_allclose(tiles * out["scale"], sel)
    assert np.abs(tiles).max() == pytest.approx(1.0)
    assert out["outs"] == [0, 2] and out["ins"] == [1, 3, 4]


def test_heatmap_tiles_all_zero_and_bad_index():
    out = heatmap_tiles(np.zeros((2, 2, 3, 3)))
    assert out["scale"] == 0.0 and np.all(out["tiles"] == 0)
    with pytest.raises(AnalysisError, match="ins"):
        heatmap_tiles(np.zeros((2, 2, 3, 3)), ins=[2])


def test_top_inputs_ranks_by_kernel_l2_norm():
    w = np.zeros((2, 4, 2, 2))
    w[0, 0] = 1.0  # norm 2
    w[0, 2, 0, 0] = -3.0  # norm 3
    w[0, 3, 1, 1] = 0.5  # norm 0.5
    w[1, 1] = [[3.0, 4.0], [0.0, 0.0]]  # norm 5
    w[1, 3, 0, 0] = 5.0  # norm 5: tie, lower index first
    idx, strength = top_inputs(w, 2)
    assert idx.tolist() == [[2, 0], [1, 3]]
    np.testing.assert_allclose(strength, [[3.0, 2.0], [5.0, 5.0]])
    idx_all, _ = top_inputs(w, 10)  # clipped to the 4 inputs
    assert idx_all.shape == (2, 4)
    with pytest.raises(AnalysisError, match="k"):
        top_inputs(w, 0)
