import warnings

import numpy as np
import pytest

from analysis.core.errors import AnalysisError
from analysis.nmf import nmf_rgb, one_sided_nmf, reconstruct, reconstruction_error, split_matrix

# Three spatial patterns on a 5x5 kernel with disjoint supports: top rows, centre, bottom-right.
PATTERNS = np.zeros((3, 5, 5))
PATTERNS[0, :2, :] = [[1.0, 0.8, 0.6, 0.8, 1.0], [0.5, 0.4, 0.3, 0.4, 0.5]]
PATTERNS[1, 2, 1:4] = [0.5, 1.0, 0.5]
PATTERNS[2, 3:, 3:] = [[0.3, 0.6], [0.6, 1.0]]


def _structured(out: int = 24, cin: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every neuron = the same 3 patterns x its own signed channel loadings, with neuron-specific pattern
    strengths so that each neuron's own SVD ranks the patterns differently."""
    rng = np.random.default_rng(seed)
    strength = rng.permuted(np.tile([[0.2, 1.0, 5.0]], (out, 1)), axis=1)  # [out, 3]
    loadings = rng.standard_normal((out, 3, cin)) * strength[:, :, None]
    return np.einsum("khw,oki->oihw", PATTERNS, loadings), strength


def _match(spatial: np.ndarray) -> np.ndarray:
    """Index of the pattern each factor is closest to (cosine): [out, k]."""
    s = spatial.reshape(*spatial.shape[:2], -1)
    p = PATTERNS.reshape(3, -1)
    cos = np.einsum("okp,rp->okr", s, p) / (np.linalg.norm(s, axis=2)[:, :, None] * np.linalg.norm(p, axis=1) + 1e-12)
    return cos.argmax(axis=2)


def test_exact_structure_is_recovered_with_scaled_nonnegative_factors():
    w, _ = _structured()
    spatial, channels = one_sided_nmf(w, 3, tol=1e-6)
    assert spatial.shape == (24, 3, 5, 5) and channels.shape == (24, 3, 6)
    assert spatial.min() >= 0
    np.testing.assert_allclose(spatial.reshape(24, 3, -1).max(axis=2), 1.0)
    assert reconstruction_error(w, spatial, channels, per_neuron=True).max() < 1e-2
    np.testing.assert_allclose(reconstruct(spatial, channels), w, atol=1e-2 * np.abs(w).max())


def test_signed_reconstruction_is_positive_minus_negative_half():
    w = np.random.default_rng(1).standard_normal((10, 4, 3, 3))
    spatial, channels, split = one_sided_nmf(w, 3, return_split=True)
    c = w.shape[1]
    pos = np.einsum("okhw,oki->oihw", spatial, split[:, :, :c])
    neg = np.einsum("okhw,oki->oihw", spatial, split[:, :, c:])
    np.testing.assert_allclose(reconstruct(spatial, channels), pos - neg, atol=1e-12)
    assert split.min() >= 0
    # The split loadings give the NMF objective itself; it approximates relu(W) and relu(-W).
    x = split_matrix(w)
    x_hat = spatial.reshape(10, 3, -1).transpose(0, 2, 1) @ split
    expected = np.linalg.norm((x - x_hat).reshape(10, -1), axis=1) / np.linalg.norm(x.reshape(10, -1), axis=1)
    np.testing.assert_allclose(reconstruction_error(w, spatial, split, per_neuron=True), expected)
    pooled = np.linalg.norm(x - x_hat) / np.linalg.norm(x)
    assert reconstruction_error(w, spatial, split) == pytest.approx(pooled)


def test_factor_order_is_consistent_across_the_layer():
    w, strength = _structured(out=40, seed=2)
    raw, _ = one_sided_nmf(w, 3, align=False)
    raw_match = _match(raw)
    # Without alignment each neuron lists its patterns in its own order (else the test proves nothing).
    assert len({tuple(r) for r in raw_match}) > 1
    spatial, _ = one_sided_nmf(w, 3)
    match = _match(spatial)
    assert len({tuple(r) for r in match}) == 1, "every neuron must list the same pattern in the same slot"
    assert sorted(match[0].tolist()) == [0, 1, 2]


def test_permuted_neuron_copies_get_the_same_order():
    w, _ = _structured(out=12, seed=3)
    perm = np.random.default_rng(4).permutation(12)
    s1, c1 = one_sided_nmf(w, 3)
    s2, c2 = one_sided_nmf(w[perm], 3)
    np.testing.assert_allclose(s2, s1[perm], atol=1e-6)
    np.testing.assert_allclose(c2, c1[perm], atol=1e-5 * np.abs(c1).max())


def test_dominant_layer_pattern_comes_first():
    # Pattern 2 carries most of the layer's weight: it must be factor 0 (red).
    rng = np.random.default_rng(5)
    loadings = rng.standard_normal((20, 3, 4)) * np.array([0.3, 0.5, 4.0])[None, :, None]
    w = np.einsum("khw,oki->oihw", PATTERNS, loadings)
    spatial, _ = one_sided_nmf(w, 3)
    assert set(_match(spatial)[:, 0].tolist()) == {2}


def test_deterministic():
    w = np.random.default_rng(6).standard_normal((16, 8, 3, 3))
    a = one_sided_nmf(w, 3)
    b = one_sided_nmf(w.copy(), 3)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


def test_error_is_close_to_sklearn_per_neuron_nmf():
    from sklearn.decomposition import NMF

    w = np.random.default_rng(7).standard_normal((16, 12, 3, 3))
    spatial, _, split = one_sided_nmf(w, 3, return_split=True)
    ours = reconstruction_error(w, spatial, split, per_neuron=True).mean()
    x = split_matrix(w)
    errs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for xo in x:
            m = NMF(3, init="nndsvda", random_state=0)
            s = m.fit_transform(xo)
            errs.append(np.linalg.norm(xo - s @ m.components_) / np.linalg.norm(xo))
    assert ours <= 1.05 * np.mean(errs)


def test_pointwise_convs_are_factored_exactly_by_position():
    w = np.random.default_rng(8).standard_normal((5, 4, 1, 1))
    spatial, channels = one_sided_nmf(w, 3)
    assert spatial.shape == (5, 3, 1, 1)
    np.testing.assert_array_equal(spatial[:, :, 0, 0], np.tile([1.0, 0.0, 0.0], (5, 1)))
    np.testing.assert_allclose(channels[:, 0], w[:, :, 0, 0])
    assert np.all(channels[:, 1:] == 0)
    assert reconstruction_error(w, spatial, channels) == 0.0


def test_depthwise_kernels_split_into_positive_and_negative_part():
    w = np.random.default_rng(9).standard_normal((6, 1, 3, 3))
    spatial, channels = one_sided_nmf(w, 3)
    pos, neg = np.maximum(w[:, 0], 0), np.maximum(-w[:, 0], 0)
    np.testing.assert_allclose(spatial[:, 0], pos / pos.max(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(spatial[:, 1], neg / neg.max(axis=(1, 2), keepdims=True))
    assert np.all(spatial[:, 2] == 0)
    assert np.all(channels[:, 0, 0] > 0) and np.all(channels[:, 1, 0] < 0)
    np.testing.assert_allclose(reconstruct(spatial, channels), w, atol=1e-12)


def test_zero_neurons_do_not_poison_the_layer():
    w = np.random.default_rng(10).standard_normal((8, 6, 3, 3))
    w[3] = 0.0
    spatial, channels = one_sided_nmf(w, 3)
    assert np.all(np.isfinite(spatial)) and np.all(np.isfinite(channels))
    assert np.all(spatial[3] == 0) and np.all(channels[3] == 0)
    err = reconstruction_error(w, spatial, channels, per_neuron=True)
    assert err[3] == 0 and np.all(err[[0, 1, 2, 4]] < 0.9)


def test_nmf_rgb_maps_factors_to_channels():
    spatial = np.random.default_rng(11).uniform(0, 1, (4, 3, 5, 5))
    rgb = nmf_rgb(spatial)
    assert rgb.shape == (4, 5, 5, 3)
    np.testing.assert_array_equal(rgb, spatial.transpose(0, 2, 3, 1))
    two = nmf_rgb(spatial[:, :2])
    np.testing.assert_array_equal(two[..., :2], spatial[:, :2].transpose(0, 2, 3, 1))
    assert np.all(two[..., 2] == 0)


def test_bad_input_raises():
    with pytest.raises(AnalysisError, match="k must be"):
        one_sided_nmf(np.ones((2, 2, 3, 3)), 0)
    with pytest.raises(AnalysisError, match="one_sided_nmf"):
        one_sided_nmf(np.ones((2, 3, 3)))
    with pytest.raises(AnalysisError, match="NaN"):
        one_sided_nmf(np.full((2, 2, 3, 3), np.nan))
    with pytest.raises(AnalysisError, match="shapes do not fit"):
        reconstruction_error(np.ones((2, 2, 3, 3)), np.ones((2, 3, 3, 3)), np.ones((2, 2, 2)))


def test_random_init_is_seeded_and_reaches_a_similar_error():
    w = np.random.default_rng(12).standard_normal((16, 8, 3, 3))
    a = one_sided_nmf(w, 3, init="random", seed=1)
    b = one_sided_nmf(w, 3, init="random", seed=1)
    c = one_sided_nmf(w, 3, init="random", seed=2)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    base = reconstruction_error(w, *one_sided_nmf(w, 3))
    assert reconstruction_error(w, *a) < 1.1 * base
    with pytest.raises(AnalysisError, match="init"):
        one_sided_nmf(w, 3, init="svd")


def test_neurons_living_at_one_position_and_huge_scales_stay_finite():
    """A 1x1 branch inside an expanded 3x3 kernel is non-zero at the centre only (rank-deficient), and expanded
    weights can be tiny or huge: no overflow, no NaN, and the centre-only neurons are still reconstructed."""
    import warnings

    rng = np.random.default_rng(0)
    w = rng.standard_normal((12, 40, 3, 3))
    w[:6] = 0.0
    w[:6, :, 1, 1] = rng.standard_normal((6, 40))
    w[6:9] *= 1e30
    w[9:] *= 1e-30
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spatial, channels = one_sided_nmf(w, k=3)
    assert np.isfinite(spatial).all() and np.isfinite(channels).all()
    recon = np.einsum("okhw,oki->oihw", spatial, channels)
    np.testing.assert_allclose(recon[:6], w[:6], atol=1e-4 * np.abs(w[:6]).max())
