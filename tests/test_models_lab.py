"""The banding lab (analysis.models.lab) on a tiny config, plus bring-your-own loading of its weights."""
import dataclasses
import json

import pytest
import torch

from analysis import models
from analysis.core.errors import AnalysisError, WeightsError
from analysis.models import lab
from analysis.models.byo import load_byo

TINY = lab.LabConfig(widths=(2, 3, 3, 4, 4, 4), input_size=16, steps=3, warmup_steps=2, batch_size=4, n_train=64,
                     n_test=16, seeds=(0,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny gap + rotated model in a fresh cache (shared by the tests that only read it)."""
    cache = tmp_path_factory.mktemp("cache")
    entries = lab.train_all(cache, n_jobs=1, config=TINY, variants=("gap", "rotated"))
    return cache, entries


def test_architecture_differs_only_in_the_head():
    gap, flat, rot = (lab.make_model(v) for v in ("gap", "flatten", "rotated"))
    convs = [n for n, m in gap.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [f"conv{i}" for i in range(1, 7)]
    assert list(gap.named_children())[0][0] == "normalize"
    assert gap.conv6.weight.shape == (64, 64, 3, 3) and gap.conv1.weight.shape[1] == 3
    assert gap.head.in_features == 64 and flat.head.in_features == 64 * 7 * 7  # 28 px digits, pooled twice
    assert {k: v.shape for k, v in gap.state_dict().items()} == {k: v.shape for k, v in rot.state_dict().items()}
    shared = [k for k in gap.state_dict() if not k.startswith("head")]
    assert all(gap.state_dict()[k].shape == flat.state_dict()[k].shape for k in shared)
    x = torch.rand(5, 3, 28, 28)
    assert gap(x).shape == flat(x).shape == (5, 2)
    with pytest.raises(AnalysisError, match="unknown lab variant 'avg'"):
        lab.make_model("avg")


def test_manifest_entries(trained):
    cache, entries = trained
    folder = cache / "banding-lab"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [(e["variant"], e["seed"]) for e in manifest] == [("gap", 0), ("rotated", 0)]
    assert manifest == entries
    for e in manifest:
        assert (folder / e["weights"]).is_file() and (folder / e["init_weights"]).is_file()
        assert not e["weights"].startswith("/")  # relative to the manifest
        assert e["last_conv"] == "conv6.weight"
        assert 0.0 <= e["test_accuracy"] <= 1.0 and e["train_seconds"] > 0
        assert e["config_hash"] == lab.config_hash(TINY, e["variant"], e["seed"])
    assert not list(folder.glob("*.tmp"))  # atomic writes leave no temp files behind
    init = torch.load(folder / manifest[0]["init_weights"], weights_only=True)
    final = torch.load(folder / manifest[0]["weights"], weights_only=True)
    assert not torch.equal(init["conv6.weight"], final["conv6.weight"])  # training moved the weights


@pytest.mark.slow
def test_training_is_byte_identical_across_runs_and_workers(tmp_path, trained):
    cache, entries = trained
    again = lab.train_all(tmp_path / "a", n_jobs=1, config=TINY, variants=("gap",))
    parallel = lab.train_all(tmp_path / "b", n_jobs=2, config=TINY, variants=("gap", "flatten"))
    ref = (cache / "banding-lab" / "gap-s0.pt").read_bytes()
    assert (tmp_path / "a" / "banding-lab" / again[0]["weights"]).read_bytes() == ref
    assert (tmp_path / "b" / "banding-lab" / parallel[0]["weights"]).read_bytes() == ref
    assert again[0]["test_accuracy"] == entries[0]["test_accuracy"]
    other_seed = lab.train_all(tmp_path / "c", n_jobs=1, config=dataclasses.replace(TINY, seeds=(1,)), variants=("gap",))
    assert (tmp_path / "c" / "banding-lab" / other_seed[0]["weights"]).read_bytes() != ref


def test_retrains_only_what_is_missing_corrupt_or_stale(tmp_path):
    folder = tmp_path / "banding-lab"
    lab.train_all(tmp_path, n_jobs=1, config=TINY, variants=("gap", "flatten"))
    stamp = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    lab.train_all(tmp_path, n_jobs=1, config=TINY, variants=("gap", "flatten"))
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamp  # nothing rewritten

    (folder / "flatten-s0.pt").write_bytes(b"\x00" * 10)  # corrupt one model
    lab.train_all(tmp_path, n_jobs=1, config=TINY, variants=("gap", "flatten"))
    assert (folder / "gap-s0.pt").stat().st_mtime_ns == stamp["gap-s0.pt"]
    assert lab.load_lab("flatten", 0, tmp_path).head.in_features == 4 * 4 * 4  # retrained and loadable

    changed = dataclasses.replace(TINY, steps=4)
    (entry,) = lab.train_all(tmp_path, n_jobs=1, config=changed, variants=("gap",))
    assert entry["config_hash"] != lab.config_hash(TINY, "gap", 0)
    assert (folder / "gap-s0.pt").stat().st_mtime_ns != stamp["gap-s0.pt"]
    assert {(e["variant"], e["seed"]) for e in lab.read_manifest(tmp_path)} == {("gap", 0), ("flatten", 0)}


def test_zoo_load_and_describe_lab_model(trained):
    cache, entries = trained
    assert "lab-gap-s0" in models.available(cache) and "lab-rotated-s2" in models.available(cache)
    model = models.load("lab-rotated-s0", cache)
    assert not model.training and model.variant == "rotated"
    facts = models.describe("lab-gap-s0", cache)
    json.dumps(facts)  # JSON-able
    assert facts["input_size"] == [16, 16] and facts["last_conv"] == "conv6.weight"
    assert facts["accuracy"]["test_accuracy"] == entries[0]["test_accuracy"]
    assert facts["sha256"] == entries[0]["sha256"]
    assert [c["name"] for c in facts["conv_layers"]] == [f"conv{i}" for i in range(1, 7)]
    assert facts["conv_layers"][0] == {"name": "conv1", "shape": [2, 3, 3, 3], "kind": "conv"}
    assert facts["parameter_count"] == sum(p.numel() for p in model.parameters())
    init = lab.load_lab("gap", 0, cache, init=True)
    assert torch.equal(init.conv6.weight, torch.load(facts["init_weights"], weights_only=True)["conv6.weight"])
    with pytest.raises(AnalysisError, match="unknown model 'lab-gap'"):
        models.load("lab-gap", cache)


# ---------------------------------------------------------------------------------------------
# Bring your own


def test_byo_loads_lab_weights(trained):
    cache, _ = trained
    path = cache / "banding-lab" / "gap-s0.pt"
    kwargs = {"variant": "gap", "widths": list(TINY.widths), "input_size": 16}
    model = load_byo("analysis.models.lab:make_model", path, kwargs)
    assert not model.training
    x = torch.rand(3, 3, 16, 16)
    assert torch.equal(model(x), lab.load_lab("gap", 0, cache)(x))


def test_byo_errors_name_the_factory_or_file(trained):
    cache, _ = trained
    path = cache / "banding-lab" / "gap-s0.pt"
    with pytest.raises(AnalysisError, match="'nope.nothing:f'.*cannot import module 'nope.nothing'"):
        load_byo("nope.nothing:f", path)
    with pytest.raises(AnalysisError, match="has no attribute 'build_it'"):
        load_byo("analysis.models.lab:build_it", path)
    with pytest.raises(AnalysisError, match="must look like"):
        load_byo("analysis.models.lab.make_model", path)
    with pytest.raises(AnalysisError, match="raised AnalysisError.*unknown lab variant"):
        load_byo("analysis.models.lab:make_model", path, {"variant": "bogus"})
    with pytest.raises(AnalysisError, match="not callable"):
        load_byo("analysis.models.lab:LAST_CONV", path)
    # Right factory, wrong architecture for the file: strict key/shape check names the file.
    with pytest.raises(WeightsError, match=r"gap-s0\.pt does not fit.*conv1\.weight: file \(2, 3, 3, 3\) vs model \(8, 3, 3, 3\)"):
        load_byo("analysis.models.lab:make_model", path, {"variant": "gap"})


# ---------------------------------------------------------------------------------------------
# The task and its schedule


def test_learning_rate_warms_up_holds_then_cools_down_to_zero():
    config = dataclasses.replace(lab.LabConfig(), steps=100, warmup_steps=10, cooldown_steps=20, lr=1.0)
    lrs = [lab._lr(config, s) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == 1.0 and lrs[10] == 1.0 and lrs[79] == 1.0
    assert all(a > b for a, b in zip(lrs[79:], lrs[80:])) and 0 < lrs[-1] < 0.05
    flat = dataclasses.replace(config, cooldown_steps=0)
    assert lab._lr(flat, 99) == 1.0


def test_lab_trains_on_digits_it_never_tests_on():
    train, test = lab._digits(lab.LabConfig())
    assert train.shape == (4000, 28, 28) and test.shape == (1000, 28, 28)
    seen = {t.tobytes() for t in train}
    assert not any(t.tobytes() in seen for t in test)
    with pytest.raises(AnalysisError, match="n_train must be in 1..4000"):
        lab._digits(dataclasses.replace(lab.LabConfig(), n_train=4001))


@pytest.mark.slow
def test_default_lab_learns_its_task_and_bands(tmp_path):
    """The article's claim on the real config (9 models, about 70 CPU-s): every network >= 90% held-out accuracy;
    per variant, the median over seeds of the last conv's ratio on W: GAP R/C >= 1.8, rotated C/R >= 1.8, flatten
    R/C <= 0.75 x GAP's."""
    import statistics

    from analysis.core.banding import banding_scores

    entries = lab.train_all(tmp_path, n_jobs=2)
    assert len(entries) == 9 and all(e["test_accuracy"] >= 0.90 for e in entries), \
        [(e["variant"], e["seed"], e["test_accuracy"]) for e in entries]
    ratio = {}
    for variant in lab.VARIANTS:
        rc = []
        for e in (e for e in entries if e["variant"] == variant):
            s = banding_scores(lab.load_lab(variant, e["seed"], tmp_path).conv6.weight.detach().numpy())
            rc.append(s["R_layer"] / s["C_layer"])
        ratio[variant] = statistics.median(rc)
    assert ratio["gap"] >= 1.8 and 1 / ratio["rotated"] >= 1.8, ratio
    assert ratio["flatten"] <= 0.75 * ratio["gap"], ratio


@pytest.mark.slow
def test_the_analysis_manifest_holds_no_absolute_path_so_the_cache_folder_can_move(tmp_path, capsys):
    """The lab's weights lie in the cache folder: the manifest names them relative to it, so a moved (or copied)
    cache folder is still the same cache: nothing is recomputed and nothing points back at the old place."""
    import shutil

    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    def analyse(cache):
        path = run(AnalysisConfig(models=[ModelSpec("lab-gap-s0", dataset=lab.DATASET)], cache_dir=cache, n_jobs=1,
                                  featureviz={"size": 32, "steps": 2}, lab=TINY.to_json()))
        return json.loads(path.read_text()), capsys.readouterr().out

    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    manifest, _ = analyse(tmp_path / "here")
    assert manifest["models"]["lab-gap-s0"]["info"]["init_weights"] == "banding-lab/gap-s0-init.pt"
    assert not [s for s in strings(manifest) if s.startswith("/") or str(tmp_path) in s]
    shutil.move(tmp_path / "here", tmp_path / "there")
    moved, out = analyse(tmp_path / "there")
    assert "lab-gap-s0: unchanged, reused without loading it" in out
    assert moved["models"] == manifest["models"]
