"""Where the analysis runs: a real Dask cluster gives byte-identical results to local processes; the device setting
fails or falls back in one line without a GPU; feature visualizations on a budget grow incrementally."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from analysis import device, parallel
from analysis.core import jsonio
from analysis.core.errors import AnalysisError
from analysis.pipeline import AnalysisConfig, ModelSpec, run
from tests.test_pipeline_byo import article, spec  # noqa: F401  (the tiny bring-your-own model fixture)


def tree(folder: Path) -> dict[str, str]:
    """Every result file by content; not code-imports.json, the code key's memo of parsed imports, which holds what
    this process happened to parse before (analysis.core.codekey), not a result."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "code-imports.json"}


def analyse(cache: Path, article: Path, **cfg) -> Path:
    models = [spec(article, "tiny", image_size=32)]
    run(AnalysisConfig(models=models, cache_dir=cache, n_jobs=2, featureviz={"size": 32, "steps": 2},
                       featureviz_budget={"count": 6}, **cfg), progress=False)
    return cache


@pytest.mark.slow
def test_a_dask_cluster_gives_byte_identical_results(article, tmp_path):  # noqa: F811
    from dask.distributed import LocalCluster

    local = analyse(tmp_path / "local", article)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = analyse(tmp_path / "dask", article, backend="dask", scheduler=cluster.scheduler_address)
    a, b = tree(local), tree(remote)
    assert len(a) > 10 and any(p.startswith("analysis/tiny/") and "/tensors/" in p for p in a)
    assert a == b


def test_a_dask_backend_without_a_reachable_scheduler_is_one_line(article, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 2)  # the client retries a refused port until then
    with pytest.raises(AnalysisError, match="needs the scheduler's address"):
        analyse(tmp_path / "c", article, backend="dask")
    with pytest.raises(AnalysisError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with parallel.backend("dask", "tcp://127.0.0.1:9"):
            pass


def test_a_dask_worker_without_the_package_fails_the_build_in_one_line_instead_of_hanging(tmp_path):
    """A worker started outside the checkout (no PYTHONPATH) cannot unpickle a single task: Dask only logs 'Failed to
    deserialize' and the build used to wait for ever. The backend checks every worker first."""
    import os
    import subprocess
    import sys
    import threading

    from dask.distributed import Client, LocalCluster

    outcome: dict = {}
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(AnalysisError, match=f"the Dask scheduler at {address} has no workers"):
            with parallel.backend("dask", address):
                pass
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "2",
                                   "--no-dashboard", "--local-directory", str(tmp_path)], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with Client(address) as client:
                client.wait_for_workers(1, timeout=60)

            def analyse_there():
                try:
                    with parallel.backend("dask", address):
                        outcome["result"] = list(parallel.unordered(pow, [(2, 3), (3, 2), (2, 2)], 2))
                except AnalysisError as exc:
                    outcome["error"] = str(exc)

            thread = threading.Thread(target=analyse_there, daemon=True)
            thread.start()
            thread.join(60)
            assert not thread.is_alive(), "the build hangs on a worker that lacks the package"
        finally:
            worker.kill()
            worker.wait()
    assert outcome.get("error", "").startswith("Dask worker tcp://127.0.0.1:")
    assert "cannot import the project's analysis package (ModuleNotFoundError: No module named 'analysis')" in \
        outcome["error"] and "PYTHONPATH" in outcome["error"] and "\n" not in outcome["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_one_line_and_auto_falls_back_with_a_note():
    with pytest.raises(AnalysisError) as info:
        device.resolve("cuda")
    assert "\n" not in str(info.value) and "no CUDA GPU" in str(info.value)
    assert device.resolve("auto") == ("cpu", "no CUDA GPU found, running on the CPU")
    assert device.resolve("cpu") == ("cpu", None)
    with pytest.raises(AnalysisError, match="not one of auto, cpu, cuda"):
        device.resolve("tpu")


def test_build_flags_reach_the_analysis_and_leave_its_fingerprint_alone(tmp_path):
    import build
    from article.analysis_stage import _fingerprint_config

    args = build.parse_args(["--backend", "dask", "--scheduler", "tcp://h:8786", "--device", "cpu"])
    assert (args.backend, args.scheduler, args.device) == ("dask", "tcp://h:8786", "cpu")
    # (with a featureviz budget: without one a GPU renders every neuron, a different result; test below)
    budget = {"featureviz_budget": {"count": 6}}
    cfg = {"models": ["x"], "byo": [], "backend": "dask", "scheduler": "tcp://h:8786", "device": "cuda", **budget}
    assert _fingerprint_config(tmp_path, cfg) == _fingerprint_config(tmp_path, {"models": ["x"], "byo": [], **budget})


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_a_larger_budget_renders_only_the_new_neurons(tmp_path):
    from analysis.featureviz import cached_visualize
    from analysis.featureviz.budget import Budget

    quality = {"size": 16, "steps": 2}

    def build(count):
        return cached_visualize(Tiny(), "tiny", "w", "conv", range(6), tmp_path, quality, batch=2,
                                budget=Budget(count=count))

    first = build(2)
    assert [e["channel"] for e in first] == [0, 1]
    pngs = {p: p.stat().st_mtime_ns for p in (tmp_path / "featureviz").rglob("*.png")}
    assert len(pngs) == 2
    time.sleep(0.01)
    second = build(5)  # 5 in all: the 2 cached (free) and 3 new ones
    assert [e["channel"] for e in second] == [0, 1, 2, 3, 4]
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "featureviz").rglob("*.png")}
    assert len(after) == 5 and all(after[p] == t for p, t in pngs.items())  # the first two were not redone
    assert build(0) == second  # nothing new allowed: everything cached is still served


def test_a_seconds_budget_stops_between_batches(tmp_path):
    from analysis.featureviz import cached_visualize
    from analysis.featureviz.budget import Budget

    out = cached_visualize(Tiny(), "tiny", "w", "conv", range(6), tmp_path, {"size": 16, "steps": 2}, batch=2,
                           budget=Budget(seconds=0))
    assert out == []


def test_expanded_weights_and_featureviz_take_a_device_and_return_cpu_arrays():
    from analysis.expanded import expanded_weights
    from analysis.featureviz import visualize

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3))
    w = expanded_weights(net, "0", "2", device="cpu")
    assert w.shape == (5, 4, 3, 3) and isinstance(w, np.ndarray)
    img = visualize(net, "2", [0, 1], size=16, steps=1, device="cpu")
    assert img.shape == (2, 16, 16, 3)


def test_large_nmf_loadings_live_beside_the_json_and_figures_read_them_back(tmp_path):
    from analysis.tensor_stage import BESIDE, _arrays_beside
    from article.figures import analysis_data as ad

    channels = np.arange(BESIDE + 3, dtype=np.float32).reshape(1, 1, -1) / 7
    path = tmp_path / "analysis" / "m" / "tensors" / "a-_b.json"
    path.parent.mkdir(parents=True)
    record = _arrays_beside(path, {"shape": [1], "nmf": {"k": 1, "channels": channels, "error": 0.5}})
    assert record["nmf"]["channels"] == {"npy": "a-_b.nmf-channels.npy", "shape": [1, 1, BESIDE + 3]}
    jsonio.write_json(path, record)
    assert path.stat().st_size < 1000

    class Ctx:
        cache_dir = tmp_path

        def load_json(self, rel):
            return jsonio.read_json(tmp_path / rel)

        def error(self, msg):
            return RuntimeError(msg)

    back = ad.analysis_file(Ctx(), "m/tensors/a-_b.json")
    assert back["nmf"]["error"] == 0.5 and np.array_equal(np.asarray(back["nmf"]["channels"], np.float32), channels)
    small = _arrays_beside(path, {"nmf": {"channels": np.ones((2, 3, 4))}})
    assert isinstance(small["nmf"]["channels"], np.ndarray)  # small loadings stay in the JSON


@pytest.mark.slow
def test_the_budget_is_per_model_and_reaches_every_layer(article, tmp_path, capsys):  # noqa: F811
    cache = tmp_path / "cache"
    models = [spec(article, "one", image_size=32), spec(article, "two", "other.pt", image_size=32)]
    man = jsonio.read_json(run(AnalysisConfig(models=models, cache_dir=cache, n_jobs=1,
                                              featureviz={"size": 32, "steps": 2}, featureviz_budget={"count": 6})))
    for name in ("one", "two"):  # the first model does not eat the second one's pictures
        listing = jsonio.read_json(cache / "analysis" / man["models"][name]["neuron_featureviz"]["file"])["layers"]
        # The featured tensors' neurons (features.1: 8, features.2+features.3: 24) are always drawn and count towards
        # the budget of 6 (2 per layer per round): the layer left over gets the 2 the budget leaves it.
        assert {layer: len(v) for layer, v in listing.items()} == {"features.1": 8, "features.2+features.3": 24,
                                                                   "features.0.0": 2}
    out = capsys.readouterr().out
    assert "two: feature visualizations of 34 neuron(s) in 3 layer(s)" in out  # the build says what each got


def test_a_gpu_without_a_budget_is_a_different_analysis(tmp_path):
    """On CUDA without a budget every neuron is rendered: the freshness check (torch-free) and the model keys must
    not take a CPU build's results for it; a budget set in site.yml is the same result on either device."""
    from analysis.featureviz.budget import Budget
    from analysis.pipeline import _spec_key
    from article.analysis_stage import _fingerprint_config

    cfg = {"models": ["digitnet"], "byo": [], "featureviz_budget": {}, "device": "cpu", "n_jobs": 2}
    cpu = _fingerprint_config(tmp_path, cfg)
    assert _fingerprint_config(tmp_path, {**cfg, "device": "cuda"}) != cpu
    assert _fingerprint_config(tmp_path, {**cfg, "device": "auto"}) == cpu
    budgeted = {**cfg, "featureviz_budget": {"count": 6}}
    assert _fingerprint_config(tmp_path, {**budgeted, "device": "cuda"}) == _fingerprint_config(tmp_path, budgeted)
    spec = ModelSpec(name="digitnet")
    acfg = AnalysisConfig(models=[spec], cache_dir=tmp_path)
    assert _spec_key(spec, acfg, tmp_path, Budget(every=True)) != _spec_key(spec, acfg, tmp_path, None)
