from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d
from torch import nn

from analysis.core.errors import AnalysisError
from analysis.expanded import expanded_weights


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # These models are tiny: a second intra-op thread only adds scheduling stalls on a busy machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(layers))


def _w(conv: nn.Conv2d) -> np.ndarray:
    return conv.weight.detach().double().numpy()


def _composed(lower: np.ndarray, upper: np.ndarray, stride: int = 1) -> np.ndarray:
    """Independent composition of two cross-correlation kernels: E[o, i] = sum_m upper[o, m] (x) lower[m, i]
    with `upper` dilated by the lower conv's stride (a full 2D convolution)."""
    if stride > 1:
        k = upper.shape[-1]
        dil = np.zeros(upper.shape[:2] + ((k - 1) * stride + 1,) * 2)
        dil[:, :, ::stride, ::stride] = upper
        upper = dil
    out = np.zeros((upper.shape[0], lower.shape[1]) + tuple(np.add(upper.shape[2:], lower.shape[2:]) - 1))
    for o in range(upper.shape[0]):
        for i in range(lower.shape[1]):
            for m in range(upper.shape[1]):
                out[o, i] += convolve2d(upper[o, m], lower[m, i], mode="full")
    return out


@pytest.mark.parametrize("stride,support", [(1, 5), (2, 7)])
def test_two_convs_compose_to_the_full_convolution_of_their_kernels(stride, support):
    m = _seq(
        ("stem", nn.Conv2d(2, 3, 1)),
        ("lower", nn.Conv2d(3, 4, 3, stride=stride, padding=1)),
        ("upper", nn.Conv2d(4, 5, 3, padding=1)),
    )
    e = expanded_weights(m, "stem", "upper")
    assert e.shape == (5, 3, support, support)
    np.testing.assert_allclose(e, _composed(_w(m.lower), _w(m.upper), stride), rtol=1e-10, atol=1e-12)


def test_pointwise_depthwise_pointwise_block_is_the_einsum_composition():
    m = _seq(
        ("stem", nn.Identity()),
        ("expand", nn.Conv2d(3, 6, 1, bias=False)),
        ("dw", nn.Conv2d(6, 6, 3, padding=1, groups=6)),
        ("project", nn.Conv2d(6, 4, 1)),
    )
    e = expanded_weights(m, "stem", "project")
    expected = np.einsum("om,mhw,mi->oihw", _w(m.project)[:, :, 0, 0], _w(m.dw)[:, 0], _w(m.expand)[:, :, 0, 0])
    assert e.shape == (4, 3, 3, 3)
    np.testing.assert_allclose(e, expected, rtol=1e-10, atol=1e-12)


def test_relu_and_maxpool_are_linearized():
    def stack(act: nn.Module, pool: nn.Module) -> nn.Sequential:
        return _seq(
            ("stem", nn.Conv2d(2, 3, 1)),
            ("a", nn.Conv2d(3, 4, 3, padding=1)),
            ("act", act),
            ("pool", pool),
            ("b", nn.Conv2d(4, 5, 3, padding=1)),
        )

    nonlinear = stack(nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
    linear = stack(nn.Identity(), nn.AvgPool2d(3, stride=2, padding=1))
    e = expanded_weights(nonlinear, "stem", "b")
    assert e.shape == (5, 3, 9, 9)  # conv a + pool: 3 + (3 - 1) * 1 = 5; then conv b: 5 + (3 - 1) * 2 = 9
    np.testing.assert_allclose(e, expanded_weights(linear, "stem", "b"), rtol=1e-10, atol=1e-12)
    # And it really is the composition with the average-pool kernel in between (stride 2).
    pool = np.full((4, 4, 3, 3), 0.0)
    pool[np.arange(4), np.arange(4)] = 1 / 9
    lower = _composed(_w(nonlinear.a), pool)  # conv a then 3x3 average, stride 2 at the end
    np.testing.assert_allclose(e, _composed(lower, _w(nonlinear.b), stride=2), rtol=1e-10, atol=1e-12)


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(x + self.conv(x))  # functional ReLU in forward: must be linearized too


def test_residual_block_adds_identity_at_the_centre():
    m = _seq(("stem", nn.Conv2d(3, 4, 1)), ("block", _Residual(4)))
    e = expanded_weights(m, "stem", "block")
    expected = _w(m.block.conv).copy()
    expected[np.arange(4), np.arange(4), 1, 1] += 1.0
    assert e.shape == (4, 4, 3, 3)
    np.testing.assert_allclose(e, expected, rtol=1e-10, atol=1e-12)


def test_batchnorm_is_folded_in_eval_mode_and_caller_model_is_untouched():
    m = _seq(("stem", nn.Conv2d(2, 3, 1)), ("conv", nn.Conv2d(3, 4, 3, padding=1)), ("bn", nn.BatchNorm2d(4)))
    with torch.no_grad():
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.uniform_(-1.0, 1.0)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    e = expanded_weights(m, "stem", "bn")
    bn = {k: v.detach().double().numpy() for k, v in m.bn.state_dict().items()}
    scale = bn["weight"] / np.sqrt(bn["running_var"] + m.bn.eps)
    np.testing.assert_allclose(e, _w(m.conv) * scale[:, None, None, None], rtol=1e-10)
    assert m.training and all(isinstance(x, nn.Module) for x in m)
    assert type(m.stem) is nn.Conv2d and next(m.parameters()).dtype == torch.float32
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_chunking_and_explicit_input_size_agree():
    m = _seq(
        ("stem", nn.Conv2d(3, 5, 1)),
        ("a", nn.Conv2d(5, 6, 5, padding=2)),
        ("b", nn.Conv2d(6, 7, 3, stride=2, padding=1)),
    )
    e = expanded_weights(m, "stem", "b")
    assert e.shape == (7, 5, 7, 7)
    np.testing.assert_allclose(expanded_weights(m, "stem", "b", chunk_size=3, input_size=40), e, rtol=1e-12)


def test_bad_requests_raise_clear_errors():
    m = _seq(("stem", nn.Conv2d(2, 3, 1)), ("a", nn.Conv2d(3, 4, 3, padding=1)), ("b", nn.Conv2d(4, 4, 3, padding=1)))
    with pytest.raises(AnalysisError, match="no layer named 'nope'"):
        expanded_weights(m, "stem", "nope")
    with pytest.raises(AnalysisError, match="clips the support"):
        expanded_weights(m, "stem", "b", input_size=5)
    with pytest.raises(AnalysisError, match="does not depend"):
        expanded_weights(m, "b", "a")


class _Inception(nn.Module):
    """Concatenated branches as in InceptionV1: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | maxpool 3x3 -> 1x1."""

    def __init__(self, c: int):
        super().__init__()
        self.b1 = nn.Conv2d(c, 2, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, 3, 1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, 3, 1), nn.ReLU(), nn.Conv2d(3, 2, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), nn.Conv2d(c, 2, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def test_concatenated_branches_keep_their_own_supports():
    m = _seq(("stem", nn.Conv2d(3, 4, 1)), ("mixed", _Inception(4)))
    e = expanded_weights(m, "stem", "mixed")
    assert e.shape == (8, 4, 5, 5)  # the widest branch (5x5) sets the crop
    ring = np.ones((5, 5), bool)
    ring[1:4, 1:4] = False
    centre = np.ones((5, 5), bool)
    centre[2, 2] = False
    assert np.all(e[0:2][..., centre] == 0) and np.all(e[0:2, :, 2, 2] != 0)  # 1x1 branch: centre only
    assert np.all(e[2:4][..., ring] == 0) and np.all(e[2:4, :, 1:4, 1:4] != 0)  # 3x3 branch
    assert np.all(e[4:6][..., ring] != 0)  # 5x5 branch reaches the border of the crop
    # Pool branch: max-pool became a 3x3 average, i.e. the 1x1 weights spread as 1/9 over 3x3.
    np.testing.assert_allclose(e[6:8, :, 1:4, 1:4], np.repeat(np.repeat(_w(m.mixed.b4[1]) / 9, 3, 2), 3, 3))


def test_support_is_architectural_even_where_the_weights_are_zero():
    m = _seq(("stem", nn.Conv2d(2, 3, 1)), ("a", nn.Conv2d(3, 3, 3, padding=1)), ("b", nn.Conv2d(3, 2, 3, padding=1)))
    with torch.no_grad():
        m.b.weight[:, :, 0, :] = 0.0  # upper conv ignores its top row: the composed kernel's top row is 0
    e = expanded_weights(m, "stem", "b")
    assert e.shape == (2, 3, 5, 5)
    assert np.all(e[:, :, 0] == 0)
    np.testing.assert_allclose(e, _composed(_w(m.a), _w(m.b)), rtol=1e-10, atol=1e-12)


class _SkipAround(nn.Module):
    """A tensor from before from_layer ("stem") is concatenated after it: the batch-1 prefix shortcut
    cannot be used and the model must be rerun at full batch."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 3, 1)
        self.mid = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        a = self.stem(x)
        return self.head(torch.cat([self.mid(a), a], 1))


def test_skip_tensor_from_before_from_layer_falls_back_to_full_batch():
    torch.manual_seed(0)
    m = _SkipAround()
    e = expanded_weights(m, "mid", "head")
    np.testing.assert_allclose(e, _w(m.head)[:, :3], rtol=1e-12)
