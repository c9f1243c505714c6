"""One-sided NMF of conv weights (Voss et al. 2021, "Visualizing Weights"), batched over a whole layer.

For output neuron o, the kernel W[o] [in, h, w] is read as a matrix over kernel positions,
X_o = [relu(W_o), relu(-W_o)] of shape [h*w, 2*in] (non-negative: positive and negative parts of every
input channel become separate columns), and factored X_o ~ S_o @ F_o with S_o [h*w, k] >= 0 (spatial
factors) and F_o [k, 2*in] >= 0. Only the spatial side is a "one-sided" non-negative picture; the
channel loadings are reported signed: channels = F[:, :in] - F[:, in:].

Reconstruction: einsum('okhw,oki->oihw', spatial, channels) equals S@F_pos - S@F_neg exactly, i.e.
(NMF estimate of relu(W)) - (NMF estimate of relu(-W)), so the signed error W - W_hat is exactly the
difference of the two halves' NMF residuals.

Algorithm (all neurons at once, numpy, deterministic):
1. NNDSVD initialisation (Boutsidis & Gallopoulos 2008) from batched leading singular vectors.
2. HALS updates (Cichocki & Phan 2009; the exact coordinate minimisation scikit-learn's "cd" solver
   performs) in float32 on batched Gram matrices, stopped when the last 3 sweeps gained less than `tol`
   (default 1%) of the error reduction since the start. This is a speed/accuracy knob: the default is
   ~25x faster than a per-neuron scikit-learn loop at <0.5% higher error (bench/nmf_speed.py); pass a
   smaller tol (e.g. 1e-4) for more converged factors.
3. Scaling: each spatial factor's max over positions is 1; its channel loadings carry the magnitude.
4. Factor order, made consistent across the layer so an RGB picture of a layer reads as one image:
   every neuron's spatial factors (unit-L2 normalised) are matched to a layer-wide reference set of k
   spatial patterns by optimal assignment (maximum total cosine similarity, `_best_permutations`).
   The reference starts as the NNDSVD factors of the matrix whose columns are all neurons' spatial
   factors, each weighted by its energy ||S_oj|| * ||F_oj|| (the k non-negative patterns that best
   summarise the layer's factors), then is refined like k-means: reference_r = energy-weighted mean of
   the factors assigned to slot r, re-assign, until the assignment no longer changes. Slots are finally
   sorted by the energy assigned to them, so factor 0 (red) is the layer's dominant pattern, then green,
   then blue. Neurons that are permuted copies of each other therefore get identical factor orders.

Degenerate shapes are solved exactly instead of iteratively (the factorisation is then lossless):
- h*w <= k (e.g. 1x1 convs): one spatial factor per kernel position (an indicator of that position),
  channels = the weights at that position; unused factors are zero.
- 2*in <= k (e.g. depthwise convs, in = 1): factor 0 = positive part of the kernel, factor 1 = negative
  part (each scaled to max 1), channels = +max / -max for the single input; unused factors are zero.
These orders are consistent across neurons by construction, so no alignment is done for them.

Longer than 300 lines on purpose: one algorithm (NNDSVD start, batched HALS, factor alignment, error) kept
in one module, as a paper keeps it in one section; each helper is used only here.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from itertools import permutations
from typing import Any, Iterator

import numpy as np
from scipy.optimize import linear_sum_assignment

from analysis.core.errors import AnalysisError
from analysis.core.weights import as_conv_weight

@lru_cache(maxsize=1)
def _blas_libs() -> tuple:
    try:
        from threadpoolctl import ThreadpoolController  # installed with scikit-learn
    except ImportError:  # then BLAS keeps its own threading: slower, same results
        return ()
    return tuple(lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas")


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """The batched products here are tiny; letting OpenBLAS thread each of them costs 2-3x more than it
    saves (measured on 2 cores). Direct set/get calls: threadpoolctl's context manager re-inspects
    every library on entry and exit, which costs more than a small layer's whole NMF."""
    libs = _blas_libs()
    before = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, before):
            lib.set_num_threads(n)


def split_matrix(weight: Any, dtype: type = np.float64) -> np.ndarray:
    """X = [relu(W), relu(-W)] per neuron: [out, h*w, 2*in] (positions in row-major (y, x) order).

    Returned as a transposed view of a contiguous [out, 2*in, h*w] array (cheaper to build).
    """
    w = as_conv_weight(weight, "split_matrix")
    o, c = w.shape[:2]
    m = w.reshape(o, c, -1)
    xt = np.empty((o, 2 * c, m.shape[2]), dtype=dtype)
    np.maximum(m, 0.0, out=xt[:, :c], casting="same_kind")
    np.maximum(-m, 0.0, out=xt[:, c:], casting="same_kind")
    return xt.transpose(0, 2, 1)


def _top_svd(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leading k singular triplets of each X [B, P, N] with k < P <= N: u [B, P, k], s [B, k], vt [B, k, N].

    Works on the small Gram matrix X X^T [P, P]. Batched LAPACK calls loop over the batch and cost more
    than the NMF itself for P > 12, so larger kernels use block power iteration with oversampling plus a
    Rayleigh-Ritz step (Halko et al. 2011), which is ample for an initialisation (and exact when
    rank X <= k + 3, e.g. structured kernels). The start block is fixed, so results are deterministic.
    """
    g = x @ x.transpose(0, 2, 1)  # [B, P, P]
    p = g.shape[1]
    if p <= 12:
        evals, evecs = np.linalg.eigh(g)  # ascending
    else:
        m = min(p, k + 3)
        q = np.linalg.qr(g @ np.random.default_rng(0).standard_normal((p, m)).astype(g.dtype))[0]
        q = np.linalg.qr(g @ q)[0]
        evals, evecs = np.linalg.eigh(q.transpose(0, 2, 1) @ g @ q)
        evecs = q @ evecs
    u = evecs[:, :, ::-1][:, :, :k]
    s = np.sqrt(np.maximum(evals[:, ::-1][:, :k], 0.0))
    # Directions with (numerically) zero singular value carry nothing: e.g. a 1x1 branch's expanded weights
    # live at the centre position only. Dividing by ~0 there would blow up; such triplets become zero.
    alive = s > np.finfo(x.dtype).eps * np.maximum(s[:, :1], np.finfo(x.dtype).tiny) * max(x.shape[1:])
    s = np.where(alive, s, 0.0).astype(x.dtype)
    vt = np.where(alive[:, :, None], (u.transpose(0, 2, 1) @ x) / np.where(alive, s, 1.0)[:, :, None], 0.0)
    return u, s, vt.astype(x.dtype)


def _nndsvd(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Batched NNDSVD init (Boutsidis & Gallopoulos 2008) for X [B, P, N] -> S [B, P, k], F [B, k, N].

    Requires k < P <= N. Zeros are kept (not filled with mean(X) as in NNDSVDa): HALS, unlike
    multiplicative updates, moves exact zeros, and the unfilled start is closer to X.
    """
    if x.shape[1] > x.shape[2]:  # more positions than columns: factor the transpose
        s_t, f_t = _nndsvd(x.transpose(0, 2, 1), k)  # X^T ~ S_t F_t, so X ~ F_t^T S_t^T
        return f_t.transpose(0, 2, 1), s_t.transpose(0, 2, 1)
    u, s, vt = _top_svd(x, k)
    tiny = np.finfo(x.dtype).tiny
    b, p, n = x.shape
    S = np.zeros((b, p, k), dtype=x.dtype)
    F = np.zeros((b, k, n), dtype=x.dtype)
    # Perron-Frobenius: the leading singular pair of a non-negative matrix can be taken non-negative.
    S[:, :, 0] = np.sqrt(s[:, :1]) * np.abs(u[:, :, 0])
    F[:, 0, :] = np.sqrt(s[:, :1]) * np.abs(vt[:, 0, :])
    for j in range(1, k):
        xu, yv = u[:, :, j], vt[:, j, :]
        xp, xn, yp, yn = np.maximum(xu, 0), np.maximum(-xu, 0), np.maximum(yv, 0), np.maximum(-yv, 0)
        nxp, nxn = np.linalg.norm(xp, axis=1), np.linalg.norm(xn, axis=1)
        nyp, nyn = np.linalg.norm(yp, axis=1), np.linalg.norm(yn, axis=1)
        mp, mn = nxp * nyp, nxn * nyn
        pos = (mp > mn)[:, None]
        uu = np.where(pos, xp / np.maximum(nxp, tiny)[:, None], xn / np.maximum(nxn, tiny)[:, None])
        vv = np.where(pos, yp / np.maximum(nyp, tiny)[:, None], yn / np.maximum(nyn, tiny)[:, None])
        lam = np.sqrt(s[:, j] * np.where(pos[:, 0], mp, mn))[:, None]
        S[:, :, j] = lam * uu
        F[:, j, :] = lam * vv
    return S, F


def _hals(
    x: np.ndarray, st: np.ndarray, f: np.ndarray, n_iter: int, tol: float, check: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Batched HALS for min ||X - S F||^2 with S, F >= 0; X [B, P, N], S^T [B, k, P], F [B, k, N].

    Each sweep minimises exactly over one row of F, then one column of S, at a time (Cichocki & Phan
    2009). Stops when the last `check` sweeps reduced the batch's total squared error by at most `tol`
    times its whole reduction since the start, or after n_iter sweeps. Computes in x's dtype and returns
    new arrays (S^T, F). Written for few numpy calls per sweep: the arrays are small, so call overhead and
    memory traffic dominate, not flops.
    """
    b, k, p = st.shape
    n = x.shape[2]
    dt = x.dtype
    # X with the current S (resp. F^T) appended as extra columns: one matmul then yields both the
    # HALS target and the Gram matrix, [S^T X | S^T S] (resp. [F X^T | F F^T]).
    x_ext = np.empty((b, p, n + k), dtype=dt)
    x_ext[:, :, :n] = x
    x_ext[:, :, n:] = st.transpose(0, 2, 1)
    xt_ext = np.empty((b, n, p + k), dtype=dt)
    xt_ext[:, :, :p] = x.transpose(0, 2, 1)
    # zf = [targets; F], zs = [targets; S^T]: a row update is one matmul with the coefficient row
    # [e_j, d_j e_j - g_j] / d_j (d = diag g) followed by a clamp at zero (see `rows_update`).
    zf = np.empty((b, 2 * k, n), dtype=dt)
    zf[:, k:] = f
    zs = np.empty((b, 2 * k, p), dtype=dt)
    zs[:, k:] = st
    f, st = zf[:, k:], zs[:, k:]
    eye = np.eye(k, dtype=dt)
    eye_b = np.broadcast_to(eye, (b, k, k))
    tiny = np.finfo(dt).tiny
    xt = xt_ext[:, :, :p]
    xx = float(np.einsum("bnp,bnp->", xt, xt, dtype=np.float64))

    def sq_error(fxt: np.ndarray, sts: np.ndarray, fft: np.ndarray) -> float:
        # ||X - SF||^2 = ||X||^2 - 2<S^T, F X^T> + <S^T S, F F^T>, summed over the batch.
        cross = float(np.einsum("bkp,bkp->", st, fxt, dtype=np.float64))
        return xx - 2.0 * cross + float(np.einsum("bij,bij->", sts, fft, dtype=np.float64))

    def rows_update(z: np.ndarray, gram: np.ndarray) -> None:
        # rows_j <- max(0, rows_j + (target_j - g_j @ rows) / g_jj), j = 0..k-1, in place (Gauss-Seidel).
        d = np.maximum(np.diagonal(gram, axis1=1, axis2=2), tiny)[:, :, None]  # [B, k, 1]
        coef = np.concatenate([eye_b, d * eye - gram], axis=2)  # [B, k, 2k]
        coef /= d
        for j in range(k):
            np.maximum(coef[:, j : j + 1] @ z, 0.0, out=z[:, k + j : k + j + 1])

    first = prev = sq_error(f @ xt, st @ x_ext[:, :, n:], np.einsum("bkn,bjn->bkj", f, f))
    for it in range(n_iter):
        prod = st @ x_ext  # [B, k, N + k] = [S^T X | S^T S]
        zf[:, :k] = prod[:, :, :n]
        rows_update(zf, prod[:, :, n:])
        xt_ext[:, :, p:] = f.transpose(0, 2, 1)
        prod = f @ xt_ext  # [B, k, P + k] = [F X^T | F F^T]
        zs[:, :k] = prod[:, :, :p]
        fft = prod[:, :, p:]
        rows_update(zs, fft)
        x_ext[:, :, n:] = st.transpose(0, 2, 1)
        if it % check == check - 1:
            err = sq_error(zs[:, :k], st @ x_ext[:, :, n:], fft)
            # Stop when the last `check` sweeps gained at most `tol` of all the progress since the
            # start (cf. scikit-learn's cd solver, which compares against its first iteration).
            if prev - err <= tol * (first - err) or err <= 1e-12 * xx:
                break
            prev = err
    return st.copy(), f.copy()


def _best_permutations(sim: np.ndarray) -> np.ndarray:
    """perm [B, k] maximising sum_r sim[b, perm[b, r], r] (optimal assignment of factors to slots).
    Exhaustive and vectorised for k <= 5 (first optimum wins: deterministic), Hungarian beyond."""
    b, k, _ = sim.shape
    if k <= 5:
        perms = np.array(list(permutations(range(k))))  # [n_perm, k], lexicographic
        score = sim[:, perms, np.arange(k)].sum(axis=2)  # [B, n_perm]
        return perms[np.argmax(score, axis=1)]
    out = np.empty((b, k), dtype=np.int64)
    for i in range(b):
        rows, cols = linear_sum_assignment(-sim[i])
        out[i, cols] = rows
    return out


def _unit(v: np.ndarray, axis: int) -> np.ndarray:
    n = np.linalg.norm(v, axis=axis, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def align_factors(st: np.ndarray, f: np.ndarray, max_rounds: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Reorder each neuron's factors to one layer-wide order (see the module docstring, step 4).

    st = S^T [B, k, P] >= 0, f [B, k, N]. Returns reordered copies (the product S F is unchanged).
    """
    b, k, p = st.shape
    unit = _unit(st, axis=2)  # [B, k, P]
    energy = np.linalg.norm(st, axis=2) * np.linalg.norm(f, axis=2)  # [B, k]
    if not np.any(energy > 0):
        return st.copy(), f.copy()
    weighted = unit * energy[:, :, None]
    # Reference patterns [P, k]: NNDSVD of the matrix of all (energy-weighted) spatial factors of the
    # layer, [P, B*k]; its k non-negative patterns summarise the layer's spatial variety. Refined below.
    pool = weighted.reshape(1, b * k, p).transpose(0, 2, 1)
    ref = _unit(_nndsvd(pool, k)[0][0], axis=0) if k < min(p, b * k) else np.eye(p, k, dtype=st.dtype)
    perm = None
    for _ in range(max_rounds):
        new = _best_permutations(unit @ ref)  # similarity [B, factor, slot]
        if perm is not None and np.array_equal(new, perm):
            break
        perm = new
        summed = np.take_along_axis(weighted, perm[:, :, None], axis=1).sum(axis=0).T  # [P, k]
        # A slot nobody contributes to keeps its previous pattern.
        ref = np.where(np.linalg.norm(summed, axis=0) > 0, _unit(summed, axis=0), ref)
    # Slots sorted by assigned energy: dominant layer pattern first (red in nmf_rgb).
    slot_energy = np.take_along_axis(energy, perm, axis=1).sum(axis=0)
    perm = perm[:, np.argsort(-slot_energy, kind="stable")]
    return np.take_along_axis(st, perm[:, :, None], axis=1), np.take_along_axis(f, perm[:, :, None], axis=1)


def _exact_positions(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """h*w <= k: S = indicator of each position, F = X (lossless). Returns (S^T [B, k, P], F)."""
    b, p, n = x.shape
    st = np.zeros((b, k, p))
    st[:, np.arange(p), np.arange(p)] = 1.0
    f = np.zeros((b, k, n))
    f[:, :p] = x
    return st, f


def _exact_columns(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """2*in <= k: S = X's columns (positive parts, then negative parts), F = identity (lossless)."""
    b, p, n = x.shape
    st = np.zeros((b, k, p))
    st[:, :n] = x.transpose(0, 2, 1)
    f = np.zeros((b, k, n))
    f[:, np.arange(n), np.arange(n)] = 1.0
    return st, f


def _normalise(st: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each spatial factor to max 1 over positions; F scaled inversely (product unchanged). Dead factors -> 0."""
    m = st.max(axis=2, keepdims=True)  # [B, k, 1]
    live = m > 0
    st = np.divide(st, m, out=np.zeros_like(st), where=live)
    f = np.where(live, f * m, 0.0).astype(f.dtype, copy=False)
    return st, f


def one_sided_nmf(
    weight: Any,
    k: int = 3,
    *,
    n_iter: int = 200,
    tol: float = 1e-2,
    seed: int = 0,
    init: str = "nndsvd",
    align: bool = True,
    return_split: bool = False,
) -> tuple[np.ndarray, ...]:
    """One-sided NMF of every output neuron of a conv layer (see the module docstring).

    weight: [out, in, h, w]. Returns (spatial [out, k, h, w] >= 0 with each factor's max 1 (or all 0),
    channels [out, k, in] signed), plus split [out, k, 2*in] >= 0 (the raw non-negative loadings
    [F_pos, F_neg]) if return_split; all float64. `init="random"` uses `seed` (NNDSVD needs none);
    `align=False` keeps each neuron's own NNDSVD order (only useful to study the alignment).
    """
    w = as_conv_weight(weight, "one_sided_nmf", keep_float32=True)  # widened to float64 a few neurons at a time
    if int(k) < 1:
        raise AnalysisError(f"one_sided_nmf: k must be >= 1, got {k}")
    if init not in ("nndsvd", "random"):
        raise AnalysisError(f"one_sided_nmf: init must be 'nndsvd' or 'random', got {init!r}")
    k = int(k)
    o, c, h, wd = w.shape
    p, n = h * wd, 2 * c
    # NMF is scale-equivariant: the iterative solver factors each neuron at unit max |w| (float32 sums of squares
    # of expanded weights through many layers can overflow) and the scale goes back to the channel loadings.
    neuron_scale = np.ones(o)
    if p <= k:
        st, f = _exact_positions(split_matrix(w), k)
    elif n <= k:
        st, f = _exact_columns(split_matrix(w), k)
    else:
        flat = w.reshape(o, -1)
        # max |w| without a float64 copy of w
        neuron_scale = np.maximum(flat.max(axis=1), -flat.min(axis=1)).astype(np.float64)
        neuron_scale[~np.isfinite(neuron_scale) | (neuron_scale == 0)] = 1.0
        # float32: half the memory traffic, ample for pictures; built a few neurons at a time (no float64 copy)
        xt32 = np.empty((o, n, p), dtype=np.float32)
        step = max(1, (1 << 22) // max(1, n * p))
        for a in range(0, o, step):
            xt32[a:a + step] = split_matrix(w[a:a + step] / neuron_scale[a:a + step, None, None, None],
                                            np.float32).transpose(0, 2, 1)
        x32 = xt32.transpose(0, 2, 1)
        with _one_blas_thread():
            if init == "nndsvd":
                s0, f0 = _nndsvd(x32, k)
                st0 = s0.transpose(0, 2, 1)
            else:
                rng = np.random.default_rng(seed)
                scale = np.sqrt(x32.mean(axis=(1, 2)) / k)[:, None, None].astype(np.float32)
                st0, f0 = scale * rng.random((o, k, p), np.float32), scale * rng.random((o, k, n), np.float32)
            st, f = _hals(x32, st0, f0, n_iter=n_iter, tol=tol)
            if align:
                st, f = align_factors(*_normalise(st, f))
    st, f = _normalise(st.astype(np.float64), f.astype(np.float64))
    f = f * neuron_scale[:, None, None]
    spatial = st.reshape(o, k, h, wd)
    channels = f[:, :, :c] - f[:, :, c:]
    return (spatial, channels, f) if return_split else (spatial, channels)


def nmf_rgb(spatial: Any) -> np.ndarray:
    """[out, k, h, w] spatial factors -> [out, h, w, 3] in [0, 1]: factors 0, 1, 2 -> R, G, B.

    k = 1 or 2 fills the missing colour channels with zero; factors beyond the third are not shown.
    """
    s = as_conv_weight(spatial, "nmf_rgb")
    o, k, h, wd = s.shape
    rgb = np.zeros((o, 3, h, wd))
    rgb[:, : min(k, 3)] = s[:, :3]
    return np.clip(rgb.transpose(0, 2, 3, 1), 0.0, 1.0)


def reconstruct(spatial: Any, channels: Any) -> np.ndarray:
    """W_hat = einsum('okhw,oki->oihw', spatial, channels): [out, in, h, w]."""
    return np.einsum("okhw,oki->oihw", np.asarray(spatial, dtype=np.float64), np.asarray(channels, dtype=np.float64))


def reconstruction_error(weight: Any, spatial: Any, channels: Any, *, per_neuron: bool = False) -> Any:
    """Relative Frobenius error ||X - S F|| / ||X|| of the pos/neg-split matrices X = [relu(W), relu(-W)].

    Returns one float for the whole layer (all neurons' matrices pooled; 0.0 for an all-zero layer), or
    with per_neuron=True an array [out] (0 for all-zero neurons). `channels` is either the split loadings
    [out, k, 2*in] (return_split=True: the exact NMF objective) or the signed loadings [out, k, in], read
    as F = [relu(channels), relu(-channels)] (the decomposition as displayed; equal to the former when no
    factor loads both signs of one channel).
    """
    w = as_conv_weight(weight, "reconstruction_error", keep_float32=True)  # widened chunk by chunk below
    o, c, h, wd = w.shape
    s = np.asarray(spatial, dtype=np.float64)
    f = np.asarray(channels, dtype=np.float64)
    if s.ndim != 4 or s.shape[0] != o or s.shape[2:] != (h, wd) or f.ndim != 3 or f.shape[:2] != s.shape[:2]:
        raise AnalysisError(
            f"reconstruction_error: shapes do not fit: weight {list(w.shape)}, spatial {list(s.shape)}, "
            f"channels {list(f.shape)}"
        )
    if f.shape[2] == c:
        f = np.concatenate([np.maximum(f, 0.0), np.maximum(-f, 0.0)], axis=2)
    elif f.shape[2] != 2 * c:
        raise AnalysisError(f"reconstruction_error: channels last dim must be {c} or {2 * c}, got {f.shape[2]}")
    num, den = np.empty(o), np.empty(o)
    # A few neurons at a time: float64 copies of a whole 2048 x 2048 x 3 x 3 layer would take ~2 GB.
    step = max(1, (1 << 22) // max(1, 2 * c * h * wd))
    for a in range(0, o, step):
        x = split_matrix(w[a:a + step])
        x_hat = s[a:a + step].reshape(len(x), s.shape[1], -1).transpose(0, 2, 1) @ f[a:a + step]
        num[a:a + step] = ((x - x_hat) ** 2).reshape(len(x), -1).sum(axis=1)
        den[a:a + step] = (x**2).reshape(len(x), -1).sum(axis=1)
    if not per_neuron:
        return float(np.sqrt(num.sum() / den.sum())) if den.sum() > 0 else 0.0
    return np.sqrt(np.divide(num, den, out=np.zeros_like(num), where=den > 0))
