"""analysis.safeload: every bad weights file becomes a WeightsError naming the file; pickles never run code."""
import hashlib
import io
import pickle

import pytest
import torch

from analysis.core.errors import AnalysisError, WeightsError
from analysis.safeload import check_keys_and_shapes, load_state_dict


class _TouchOnUnpickle:
    """A pickle payload that creates `marker` when unpickled by a normal (unsafe) unpickler."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _save(obj, path):
    torch.save(obj, path)
    return path


@pytest.fixture
def good(tmp_path):
    sd = {"conv.weight": torch.arange(12.0).reshape(1, 3, 2, 2), "conv.bias": torch.tensor([0.5])}
    return sd, _save(sd, tmp_path / "good.pt")


def test_loads_plain_state_dict(good):
    sd, path = good
    out = load_state_dict(path)
    assert list(out) == list(sd)
    assert all(torch.equal(out[k], sd[k]) for k in sd)


def test_hash_prefix_accepted_and_refused(good):
    _, path = good
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "conv.weight" in load_state_dict(path, expected_sha256_prefix=digest[:8])
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:8]
    with pytest.raises(WeightsError, match="good.pt") as e:
        load_state_dict(path, expected_sha256_prefix=wrong)
    assert wrong in str(e.value)


def test_missing_and_empty(tmp_path):
    with pytest.raises(WeightsError, match=r"not found: .*nothing\.pt"):
        load_state_dict(tmp_path / "nothing.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WeightsError, match=r"empty.*empty\.pt"):
        load_state_dict(tmp_path / "empty.pt")


def test_truncated_and_garbage(good, tmp_path):
    _, path = good
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"cut\.pt is truncated or corrupt"):
        load_state_dict(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"definitely not a checkpoint")
    with pytest.raises(WeightsError, match=r"junk\.pt is truncated or corrupt"):
        load_state_dict(tmp_path / "junk.pt")


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = _TouchOnUnpickle(str(marker))
    # The payload is live: an ordinary unpickler runs it (proves the test below could fail).
    live = tmp_path / "live-marker"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(str(live))))
    assert live.exists()

    path = _save({"weight": torch.zeros(2), "evil": payload}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match=r"refusing to load .*evil\.pt") as e:
        load_state_dict(path)
    assert "weights_only=False" not in str(e.value)  # never suggest the unsafe retry
    assert not marker.exists()

    raw = tmp_path / "evil.pkl"  # a bare pickle (not torch's zip format) too
    raw.write_bytes(pickle.dumps({"w": payload}))
    with pytest.raises(WeightsError, match=r"evil\.pkl"):
        load_state_dict(raw)
    assert not marker.exists()


def test_non_dict_and_non_tensor_content(tmp_path):
    with pytest.raises(WeightsError, match=r"list\.pt holds a list"):
        load_state_dict(_save([torch.zeros(1)], tmp_path / "list.pt"))
    with pytest.raises(WeightsError, match=r"'lr' is a float"):
        load_state_dict(_save({"w": torch.zeros(1), "lr": 0.1}, tmp_path / "opt.pt"))


@pytest.mark.parametrize("bad, word", [(float("nan"), "NaN"), (float("inf"), "inf")])
def test_non_finite_values_name_the_key(tmp_path, bad, word):
    w = torch.zeros(3, 3)
    w[1, 2] = bad
    path = _save({"ok": torch.ones(2), "layer4.conv.weight": w}, tmp_path / "nan.pt")
    with pytest.raises(WeightsError, match=rf"nan\.pt.*'layer4\.conv\.weight' contains {word}"):
        load_state_dict(path)


def test_integer_tensors_are_not_checked_for_nan(tmp_path):
    path = _save({"bn.num_batches_tracked": torch.tensor(7)}, tmp_path / "int.pt")
    assert int(load_state_dict(path)["bn.num_batches_tracked"]) == 7


def test_check_keys_and_shapes_names_problems():
    sd = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "extra": torch.zeros(1)}
    expected = {"a": (2, 3), "b": (5,), "c": (1,)}
    with pytest.raises(WeightsError) as e:
        check_keys_and_shapes(sd, expected, "model.pt")
    msg = str(e.value)
    assert "model.pt" in msg
    assert "1 missing key(s): c" in msg
    assert "1 unexpected key(s): extra" in msg
    assert "b: file (4,) vs model (5,)" in msg
    check_keys_and_shapes({"a": torch.zeros(2, 3)}, {"a": (2, 3)}, "ok.pt")  # exact fit: no error


def test_check_keys_lists_only_first_few():
    expected = {f"k{i}": (1,) for i in range(20)}
    with pytest.raises(WeightsError, match=r"20 missing key\(s\): k0, k1, k2, k3, k4 \(and 15 more\)"):
        check_keys_and_shapes({}, expected, "x.pt")


def test_errors_are_analysis_errors():
    assert issubclass(WeightsError, AnalysisError)
