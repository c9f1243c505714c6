"""Dataset examples: the one-pass stage (analysis/examples_stage.py) per model, from an empty state, as the cold build
runs it: wall and CPU seconds (`time.process_time`, this process's threads), images, layers and channels, and the bytes
of what it writes for the site. With `--folder N`, a synthetic folder of N JPEGs (500 x 375 crops of the bundled
photos, the size of ImageNet's validation images) through EfficientNet-Lite0 instead: images per second, CPU per
image, and the same pass resumed under a time budget.

    python bench/examples_pass.py [--models efficientnet-lite0,mobilenet-v2,lab-gap-s0]
    python bench/examples_pass.py --folder 2000 [--seconds 60]

Runs on one torch thread per worker as the build does (n_jobs 2 gives the forward passes 2 threads), in a temp cache
(the repository's .cache is only read: trained lab weights are copied from it when present).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as build.py: 2 threads on a busy machine
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def subject(name: str, cache: Path):
    from analysis import loading, recipes
    from analysis.core.spec import ModelSpec, Subject

    model, info = loading.load(ModelSpec(name), cache)
    recipe = recipes.recipe_for(name, model, None, recipes.RecipeSpec())
    return Subject(name, model, info, recipe)


def folder_size(folder: Path) -> tuple[int, int]:
    files = [f for f in folder.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files), len(files)


def run(name: str, dataset: str, tmp: Path, settings: dict | None = None) -> dict:
    import torch

    from analysis.core import image_sets
    from analysis.examples_stage import examples
    from analysis.core.spec import Workspace

    torch.set_num_threads(1)
    cache = tmp / "cache"
    s = subject(name, cache)
    image_set = image_sets.open_set(dataset)
    ws = Workspace(cache_dir=cache, root=cache / "analysis", n_jobs=2, featureviz={}, progress=True)
    w0, c0 = time.perf_counter(), time.process_time()
    out = examples(s, ws, image_set, settings or {})
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    data, files = folder_size(ws.root / name / "examples")
    pics, npics = folder_size(ws.root / name / "examples" / "pics") if (ws.root / name / "examples" / "pics").is_dir() \
        else (0, 0)
    import json

    index = json.loads((ws.root / out["file"]).read_text())
    channels = sum(layer["channels"] for layer in index["layers"].values())
    return {"model": name, "dataset": dataset, "images": out["images"], "complete": out["complete"], "wall": wall,
            "cpu": cpu, "layers": len(index["layers"]), "channels": channels, "bytes": data, "files": files,
            "picture_bytes": pics, "pictures": npics}


def synthetic_folder(folder: Path, n: int) -> None:
    """n JPEGs of 500 x 375 (ImageNet validation size): crops of the bundled photos, each flipped and shifted."""
    import numpy as np
    from PIL import Image

    from analysis.core import image_sets

    photos = [np.asarray(Image.open(p).convert("RGB")) for _, p in image_sets.bundled_photo_files()]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for k in range(n):
        p = photos[k % len(photos)]
        img = Image.fromarray(p).resize((max(500, p.shape[1]), max(375, p.shape[0])))
        x, y = rng.integers(0, img.width - 499), rng.integers(0, img.height - 374)
        crop = img.crop((x, y, x + 500, y + 375))
        if k % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        sub = folder / f"n{k % 100:03d}"
        sub.mkdir(exist_ok=True)
        crop.save(sub / f"img{k:06d}.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="efficientnet-lite0,mobilenet-v2,lab-gap-s0")
    ap.add_argument("--folder", type=int, help="instead: a synthetic folder of this many JPEGs (EfficientNet-Lite0)")
    ap.add_argument("--seconds", type=float, default=60.0, help="--folder: the time budget of the resumed run")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vw-examples-") as tmpname:
        tmp = Path(tmpname)
        lab = REPO / ".cache" / "banding-lab"
        if lab.is_dir():
            shutil.copytree(lab, tmp / "cache" / "banding-lab")
        if args.folder:
            folder = tmp / "images"
            synthetic_folder(folder, args.folder)
            rows.append(run("efficientnet-lite0", str(folder), tmp))
            shutil.rmtree(tmp / "cache" / "examples")
            shutil.rmtree(tmp / "cache" / "analysis")
            builds = 0
            while True:
                builds += 1
                r = run("efficientnet-lite0", str(folder), tmp, {"seconds": args.seconds})
                rows.append({**r, "model": f"efficientnet-lite0, build {builds} (seconds: {args.seconds:g})"})
                if r["complete"] or builds >= 50:
                    break
        else:
            for name in args.models.split(","):
                rows.append(run(name, "mnist" if name.startswith("lab-") else "photos", tmp))
    print(f"# dataset-examples pass (load avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")
    print("| model | dataset | images seen | new | layers | channels | wall (s) | CPU (s) | CPU per new image (ms) "
          "| written (MB, files) | pictures (MB, files) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    before = 0
    for r in rows:
        dataset = r["dataset"] if r["dataset"] in ("photos", "mnist") else "folder"
        new = r["images"] - before if "build" in r["model"] else r["images"]  # a resumed build: the ones it added
        before = r["images"] if "build" in r["model"] else 0
        print(f"| {r['model']} | {dataset} | {r['images']} | {new} | {r['layers']} | {r['channels']} | "
              f"{r['wall']:.1f} | {r['cpu']:.1f} | {1000 * r['cpu'] / max(1, new):.0f} | "
              f"{r['bytes'] / 1e6:.1f}, {r['files']} | {r['picture_bytes'] / 1e6:.1f}, {r['pictures']} |")


if __name__ == "__main__":
    main()
