"""`image_size` checked against the network (analysis.forward_check): the build runs the model's forward once at the
declared size; a forward that raises, or a conv whose padded input is smaller than its kernel, is one error at the
front matter's image_size. MTCNN's ONet with facenet-pytorch's trained weights expects 48x48 faces."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from analysis.core.errors import AnalysisError
from analysis.forward_check import check_image_size
from test_blocks_real import ONet, onet_weights


@pytest.fixture(scope="module")
def onet():
    model = ONet()
    model.load_state_dict(torch.load(onet_weights(), weights_only=True), strict=True)
    return model.eval()


def test_onet_runs_at_its_own_size(onet):
    check_image_size(onet, 48, 3, "onet:make")


def test_a_conv_that_sees_less_than_its_kernel_is_named(onet):
    with pytest.raises(AnalysisError) as info:
        check_image_size(onet, 12, 3, "onet:make")
    assert str(info.value) == ("image_size 12: conv3 gets a 1x1 input, smaller than its 3x3 kernel; the network needs "
                               "larger images")
    assert info.value.field == "image_size"


def test_a_forward_that_raises_at_the_declared_size_is_one_error_naming_the_models_line(onet):
    with pytest.raises(AnalysisError) as info:
        check_image_size(onet, 64, 3, "onet:make")
    text = str(info.value)
    assert text.startswith("image_size 64: the model's forward() fails on a 1x3x64x64 input: ")
    assert re.search(r"test_blocks_real.py:\d+: RuntimeError: \S", text)  # the model's line, then torch's own words
    assert info.value.field == "image_size" and "\n" not in text


def test_padding_counts_and_dilation_widens_the_kernel():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(8), nn.Conv2d(4, 4, 3, padding=1),
                        nn.Conv2d(4, 4, 3, dilation=2))
    check_image_size(net, 40, 3)  # 40 -> 5 -> 5 -> 1
    with pytest.raises(AnalysisError, match=r"image_size 32: 3 gets a 4x4 input, smaller than its 5x5 kernel"):
        check_image_size(net, 32, 3)
    with pytest.raises(AnalysisError, match=r"^image_size 8: 3 gets a 1x1 input, smaller than its 5x5 kernel"):
        check_image_size(net, 8, 3)
    padded = nn.Sequential(nn.MaxPool2d(8), nn.Conv2d(3, 4, 5, padding=1))
    with pytest.raises(AnalysisError, match=r"^image_size 16: 1 gets a 2x2 input, 4x4 with its padding, smaller than "
                                            r"its 5x5 kernel"):
        check_image_size(padded, 16, 3)


def test_same_padding_is_never_too_small():
    check_image_size(nn.Sequential(nn.Conv2d(1, 2, 7, padding="same"), nn.ReLU()), 3, 1)


def test_sys_exit_in_forward_is_a_failed_check_not_the_end_of_the_build():
    class Quits(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)

        def forward(self, x):
            raise SystemExit(0)

    with pytest.raises(AnalysisError, match=r"image_size 16: .*test_forward_check.py:\d+: the model's forward\(\) "
                                            r"called sys.exit\(0\) .*'quits:make'"):
        check_image_size(Quits(), 16, 3, "quits:make")
