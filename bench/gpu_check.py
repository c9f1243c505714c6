#!/usr/bin/env python3
"""CPU vs CUDA: the analyses that run on the GPU (expanded weights, feature visualization) must give the CPU's results
within the tolerances below, and the whole analysis of a small model must too. Prints one compact table; exits 1 on
any failure, 2 when torch sees no CUDA GPU. Self-contained: random weights, no downloads, about 1-2 minutes on one
H200. Run from the repository root after `pip install -r requirements.txt`:

    python bench/gpu_check.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Expanded weights (float32, TF32 off): max |cuda - cpu| / max |cpu| over the tensor.
EXPANDED_TOL = 1e-4
# Feature visualization: Adam steps amplify float rounding, so images are compared by mean |cuda - cpu| per pixel
# (images in [0, 1]) after a short run from the same random start.
FEATUREVIZ_MEAN_TOL = 0.02
# Whole analysis of a small model (tensor reports): banding R, C and NMF error, relative.
REPORT_TOL = 1e-3

OTHER = "cuda"  # --cpu-only: compare the CPU with itself (checks this script on a machine without a GPU)
rows: list[tuple[str, str, float, float, float, float, bool]] = []


def record(what: str, metric: str, value: float, tol: float, t_cpu: float, t_cuda: float) -> None:
    rows.append((what, metric, value, tol, t_cpu, t_cuda, bool(value <= tol)))


def timed(fn, *args, **kw):
    if kw.get("device") == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    if kw.get("device") == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def expanded(name: str, model: torch.nn.Module, jobs: list[str]) -> None:
    from analysis import recipes
    from analysis.tensor_stage import tensor_of

    recipe = recipes.auto_recipe(model, 224)
    by_id = {j.id: j for j in recipe.tensors}
    for job_id in jobs:
        job = by_id[job_id]
        cpu, t_cpu = timed(tensor_of, model, job, recipe, device="cpu")
        cuda, t_cuda = timed(tensor_of, model, job, recipe, device=OTHER)
        err = float(np.abs(cuda - cpu).max() / max(np.abs(cpu).max(), 1e-30))
        record(f"{name} {job_id} {list(cpu.shape)}", "max rel", err, EXPANDED_TOL, t_cpu, t_cuda)


def featureviz(name: str, model: torch.nn.Module, layer: str) -> None:
    from analysis.featureviz import visualize

    kw = dict(size=64, steps=32, batch=16, num_threads=None)
    cpu, t_cpu = timed(visualize, model, layer, list(range(16)), device="cpu", **kw)
    cuda, t_cuda = timed(visualize, model, layer, list(range(16)), device=OTHER, **kw)
    record(f"{name} featureviz {layer} 16x64px 32 steps", "mean abs", float(np.abs(cuda - cpu).mean()),
           FEATUREVIZ_MEAN_TOL, t_cpu, t_cuda)


def small_analysis() -> None:
    """The tiny bring-your-own model of the tests, analysed end to end on each device."""
    import importlib.util

    from analysis.core import jsonio
    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    src = Path(__file__).resolve().parents[1] / "tests" / "test_pipeline_byo.py"
    spec = importlib.util.spec_from_file_location("vw_byo_test", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "article"
        folder.mkdir()
        (folder / "tinynet.py").write_text(module.FACTORY)
        ns: dict = {}
        exec(module.FACTORY, ns)
        torch.manual_seed(0)
        torch.save(ns["make"]().state_dict(), folder / "tiny.pt")
        results, times = {}, {}
        for label, dev in (("cpu", "cpu"), ("cuda", OTHER)):
            models = [ModelSpec("tiny", factory="tinynet:make", weights=str(folder / "tiny.pt"),
                                search_path=str(folder), image_size=32)]
            t0 = time.perf_counter()
            manifest = jsonio.read_json(run(AnalysisConfig(models=models, cache_dir=Path(tmp) / label, n_jobs=1,
                                                           featureviz={"size": 32, "steps": 16}, device=dev),
                                            progress=False))
            times[label] = time.perf_counter() - t0
            results[label] = {t["id"]: t for t in manifest["models"]["tiny"]["tensors"]}
        worst = 0.0
        for tid, a in results["cpu"].items():
            b = results["cuda"][tid]
            for k in ("R_layer", "C_layer", "nmf_error"):
                if a.get(k) is not None:
                    worst = max(worst, abs(a[k] - b[k]) / max(abs(a[k]), 1e-12))
        record("tiny model: whole analysis (banding, NMF)", "max rel", worst, REPORT_TOL, times["cpu"], times["cuda"])


def main() -> int:
    global OTHER
    if "--cpu-only" in sys.argv:
        OTHER = "cpu"
    elif not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA GPU; nothing to compare", file=sys.stderr)
        return 2
    from analysis import device
    from analysis.models.tv_mobilenet import MobileNetV2
    from analysis.models.tv_resnet import resnet50

    device.exact_math("cuda")
    torch.manual_seed(0)
    t0 = time.perf_counter()
    failures = []
    steps = [
        ("small analysis", small_analysis),
        ("mnv2 expanded", lambda: expanded("mnv2", MobileNetV2().eval(),
                                           ["features.13->features.14", "features.16->features.17+features.18"])),
        ("resnet50 expanded", lambda: expanded("resnet50", resnet50().eval(),
                                               ["layer2.3->layer3.0", "layer3.5->layer4.0", "layer4.0->layer4.1"])),
        ("mnv2 featureviz", lambda: featureviz("mnv2", MobileNetV2().eval(), "features.10")),
    ]
    for label, step in steps:
        try:
            step()
        except Exception as exc:  # one line per broken step; the others still run
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
    print(f"{'what':58s} {'metric':8s} {'value':>10s} {'tol':>8s} {'cpu s':>7s} {'cuda s':>7s}  ok")
    for what, metric, value, tol, t_cpu, t_cuda, ok in rows:
        print(f"{what[:58]:58s} {metric:8s} {value:10.2e} {tol:8.0e} {t_cpu:7.2f} {t_cuda:7.2f}  {'yes' if ok else 'NO'}")
    for f in failures:
        print(f"FAILED {f}")
    gpu = torch.cuda.get_device_name(0) if OTHER == "cuda" else "cpu vs cpu"
    print(f"torch {torch.__version__}, {gpu}, {time.perf_counter() - t0:.0f} s in all")
    return 0 if not failures and all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
