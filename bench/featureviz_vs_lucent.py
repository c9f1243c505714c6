"""Our feature visualizations against torch-lucent 0.1.8's, side by side in one run (issue 20, item 1).

    python bench/featureviz_vs_lucent.py --lucent-python /work/venvs/lucent/bin/python \
        --layers _blocks.4 _blocks.10 --channels 0 5 10 15 --out /tmp/fv-vs-lucent

EfficientNet-Lite0 (real ImageNet weights, analysis.models), channel-mean objective. Each layer is rendered at
analysis.featureviz.render_size (its receptive field, capped at --cap px); Lucent renders the same channels at the
same size with its defaults (512 steps, Adam lr 0.05, standard transforms; it upsamples images under 224 px to 224
before the model). Lucent runs in its own interpreter (--lucent-python: a venv with torch-lucent, whose torchvision
import is stood in for) right after ours, layer by layer; both on 2 torch threads with OMP_WAIT_POLICY=PASSIVE.

Ours is optimised with view=224 (analysis.featureviz.optimize: 7 steps in 8 see the picture enlarged to 224 px;
--no-view turns that off), at the default preset's steps and learning rate unless --steps/--lr say otherwise.

Prints per layer and over all neurons (medians over neurons of per-neuron ratios, ours / Lucent's):
  activation at the image's own size, and with each image resized (bilinear) to 224 px  -- target >= 1
  high-frequency share of spectral power (above 0.25 cycles/px) / photo crops' of the same size -- target <= 1.5
  CPU seconds per neuron, ours / Lucent's                                                  -- target <= 0.25
--device cuda renders every neuron of each layer on the GPU (ours and Lucent's) and reports wall seconds per
neuron; without a GPU those numbers are printed as "not measured".
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads libgomp (see bench/featureviz_cost.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "efficientnet-lite0"
VIEW = 224  # the second view: every picture resized (bilinear) to an ImageNet network's input size


def lucent_child(layer: str, size: int, steps: int, channels: list[int], out: str, threads: int) -> None:
    """Runs inside --lucent-python: render `channels` with Lucent's defaults, save [n, size, size, 3] to `out`
    and print {"cpu_s", "wall_s"} (model loading excluded) as JSON."""
    if "torchvision" not in sys.modules:  # Lucent imports only Normalize from torchvision (for preprocess=True)
        tv, tr = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
        tr.Normalize = object
        tv.transforms = tr
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tr})
    from lucent.optvis import objectives, param, render

    from analysis.models import load

    torch.set_num_threads(threads)
    model = load(MODEL).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(0)
    np.random.seed(0)
    name = layer.replace(".", "_")  # Lucent's names for nested modules
    obj = sum((objectives.channel(name, c, batch=i) for i, c in enumerate(channels[1:], 1)),
              objectives.channel(name, channels[0], batch=0))
    t0, w0 = time.process_time(), time.perf_counter()
    images = render.render_vis(model, obj, lambda: param.image(size, batch=len(channels)), thresholds=(steps,),
                               preprocess=False, progress=False, show_image=False)[-1]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    print(json.dumps({"cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0}))
    np.save(out, np.asarray(images, dtype=np.float32))


def run_lucent(python: str, layer: str, size: int, steps: int, channels: list[int], threads: int
               ) -> tuple[np.ndarray, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "lucent.npy")
        cmd = [python, __file__, "--lucent-child", layer, str(size), str(steps), out, str(threads),
               *map(str, channels)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"Lucent run failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
        return np.load(out), json.loads(proc.stdout.strip().splitlines()[-1])


def activations(model, layer: str, channels: list[int], images: np.ndarray, side: int | None) -> np.ndarray:
    """Channel-mean activation of each image for its own channel, at its own size or resized to `side`."""
    import torch.nn.functional as F

    from analysis.featureviz import objectives
    from analysis.featureviz.hooks import frozen, layer_activations

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if side is not None and x.shape[-1] != side:
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    with torch.no_grad(), frozen(model):
        return objectives.channel(layer_activations(model, layer, x), torch.tensor(channels)).numpy()


def sheet(rows: list[np.ndarray], path: Path, cell: int = 160) -> None:
    """Ours in the first row, Lucent's in the second, each picture scaled to `cell` px."""
    from PIL import Image

    cols = max(len(r) for r in rows)
    out = Image.new("RGB", (cols * (cell + 4), len(rows) * (cell + 4)), "white")
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            a = (np.clip(im, 0, 1) * 255).round().astype(np.uint8)
            out.paste(Image.fromarray(a).resize((cell, cell), Image.BILINEAR), (j * (cell + 4), i * (cell + 4)))
    out.save(path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lucent-python", default="/work/venvs/lucent/bin/python",
                    help="an interpreter with torch-lucent 0.1.8 installed (system site packages visible)")
    ap.add_argument("--layers", nargs="+", default=["_blocks.4", "_blocks.10"])
    ap.add_argument("--channels", nargs="+", type=int, default=[0, 5, 10, 15])
    ap.add_argument("--cap", type=int, default=224, help="largest render side (analysis.featureviz.render_size)")
    ap.add_argument("--steps", type=int, default=None, help="our Adam steps (default: the default preset's)")
    ap.add_argument("--lr", type=float, default=None, help="our learning rate (default: the default preset's)")
    ap.add_argument("--lucent-steps", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-view", action="store_true", help="ours optimised at its own scale only (no view=224)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", type=Path, help="folder for ours/Lucent's arrays and a comparison sheet per layer")
    args = ap.parse_args(argv)

    from analysis.featureviz import QUALITY_PRESETS, render_size, visualize
    from analysis.featureviz.quality import CUTOFF, high_frequency_share, photo_high_frequency_share
    from analysis.models import load
    from analysis.core.codekey import code_key
    from analysis.core.spec import DEFAULT_QUALITY

    preset = QUALITY_PRESETS[DEFAULT_QUALITY]
    steps, lr = args.steps or preset["steps"], args.lr or preset["lr"]
    torch.set_num_threads(args.threads)
    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    model = load(MODEL).eval()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    print(f"# {MODEL}, featureviz code {code_key('analysis.featureviz.cache')[:12]}: ours {steps} steps lr {lr} vs Lucent {args.lucent_steps} "
          f"steps, {args.threads} threads, device {args.device}")
    rows, all_ratios = [], {"own": [], "view": [], "hf": [], "lucent_hf": []}
    cpu_ours = cpu_lucent = 0.0
    wall_ours = wall_lucent = 0.0
    n_total = 0
    for layer in args.layers:
        size = render_size(model, layer, cap=args.cap)
        if gpu:  # every neuron of the layer
            from analysis.featureviz.render import _layer_width

            channels = list(range(_layer_width(model, layer, size, 3)))
        else:
            channels = list(args.channels)
        t0, w0 = time.process_time(), time.perf_counter()
        ours = visualize(model, layer, channels, size=size, steps=steps, lr=lr, batch=len(channels),
                         num_threads=args.threads, device=args.device, view=None if args.no_view else VIEW)
        c_ours, w_ours = time.process_time() - t0, time.perf_counter() - w0
        theirs, timing = run_lucent(args.lucent_python, layer, size, args.lucent_steps, channels, args.threads)
        cpu_ours, cpu_lucent = cpu_ours + c_ours, cpu_lucent + timing["cpu_s"]
        wall_ours, wall_lucent = wall_ours + w_ours, wall_lucent + timing["wall_s"]
        n_total += len(channels)
        photo = photo_high_frequency_share(size)
        a, b = {}, {}
        for key, side in (("own", None), ("view", VIEW)):
            a[key] = activations(model, layer, channels, ours, side)
            b[key] = activations(model, layer, channels, theirs, side)
        hf_a = np.array([high_frequency_share(im) for im in ours])
        hf_b = np.array([high_frequency_share(im) for im in theirs])
        ratio_own, ratio_view = a["own"] / b["own"], a["view"] / b["view"]
        all_ratios["own"] += list(ratio_own)
        all_ratios["view"] += list(ratio_view)
        all_ratios["hf"] += list(hf_a / photo)
        all_ratios["lucent_hf"] += list(hf_b / photo)
        print(f"\n## {layer} at {size} px ({len(channels)} neurons {channels if not gpu else ''})")
        print(f"activation own size   ours {np.median(a['own']):8.3f}  Lucent {np.median(b['own']):8.3f}  "
              f"ratio {np.median(ratio_own):.2f}  (per neuron {[round(float(r), 2) for r in ratio_own]})")
        print(f"activation at {VIEW} px   ours {np.median(a['view']):8.3f}  Lucent {np.median(b['view']):8.3f}  "
              f"ratio {np.median(ratio_view):.2f}  (per neuron {[round(float(r), 2) for r in ratio_view]})")
        print(f"HF share >{CUTOFF} c/px  ours {np.median(hf_a):.3f}  Lucent {np.median(hf_b):.3f}  photos "
              f"{photo:.3f}  ours/photos {np.median(hf_a / photo):.2f}  Lucent/photos {np.median(hf_b / photo):.2f}")
        print(f"CPU s/neuron          ours {c_ours / len(channels):8.2f}  Lucent {timing['cpu_s'] / len(channels):8.2f}"
              f"  ratio {c_ours / timing['cpu_s']:.3f}   (wall s/neuron {w_ours / len(channels):.2f} vs "
              f"{timing['wall_s'] / len(channels):.2f})")
        if args.out:
            stem = layer.strip("_").replace(".", "")
            np.save(args.out / f"ours_{stem}_{size}.npy", ours)
            np.save(args.out / f"lucent_{stem}_{size}.npy", theirs)
            sheet([ours, theirs], args.out / f"{stem}_{size}.png")
    med = {k: float(np.median(v)) for k, v in all_ratios.items()}
    print(f"\n## over all {n_total} neurons (medians over neurons)")
    verdict = {True: "met", False: "MISSED"}
    print(f"activation, own size, ours/Lucent      {med['own']:.2f}   target >= 1: {verdict[med['own'] >= 1]}")
    print(f"activation, at {VIEW} px, ours/Lucent    {med['view']:.2f}   target >= 1: "
          f"{verdict[med['view'] >= 1]}")
    print(f"HF share, ours/photos                  {med['hf']:.2f}   target <= 1.5: {verdict[med['hf'] <= 1.5]}"
          f"   (Lucent/photos {med['lucent_hf']:.2f})")
    ratio = cpu_ours / cpu_lucent
    print(f"CPU per neuron, ours/Lucent            {ratio:.3f}  target <= 0.25: {verdict[ratio <= 0.25]}")
    if gpu:
        print(f"GPU wall s/neuron                      ours {wall_ours / n_total:.3f}  Lucent "
              f"{wall_lucent / n_total:.3f}  ratio {wall_ours / wall_lucent:.3f}")
    else:
        print("GPU wall s/neuron                      not measured (run with --device cuda on a GPU machine)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--lucent-child":
        _, _, layer_, size_, steps_, out_, threads_, *chans_ = sys.argv
        lucent_child(layer_, int(size_), int(steps_), [int(c) for c in chans_], out_, int(threads_))
    else:
        main()
