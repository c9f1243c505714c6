"""The published networks' banding, measured on the NMF pictures the Distill "Weight Banding" article shows.

    python bench/published_banding.py --repo PATH [--out article/figures/published_data.py] [--check]

PATH is a clone of https://github.com/distillpub/post--weight-banding (any git directory of it; the images are
read with `git show`; the images are not committed here). Each of the article's "reduced weights" figures is
a JSON file, `public/diagrams/reduced_weights/<network>-<layer>.json`, whose `reduced_weights` is a grid of
`<img src="data:image/PNG;base64,...">`: one small RGB picture per neuron of the layer, its three one-sided NMF
factors as red, green and blue. This script decodes every picture of the seven layers the article compares and
scores them with the build's own function (`analysis.core.banding.picture_banding`): the row share R and column share C
of each picture's spatial variance, pooled over the layer's neurons. It writes the numbers with their provenance
(repository, commit, file, what was measured) to `article/figures/published_data.py`, a generated module the site
reads (a module, so that the render cache's code key sees a change); `--check` recomputes and fails if the committed
module differs.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import pprint
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.core.banding import picture_banding  # noqa: E402  (numpy only)

REPO_URL = "https://github.com/distillpub/post--weight-banding"
FOLDER = "public/diagrams/reduced_weights/"
OUT = ROOT / "article" / "figures" / "published_data.py"
SCHEMA = "vw-published-banding/1"
# (name shown on the site, role in Petrov et al.'s argument, file under FOLDER). Roles: "banded" (a layer the
# article shows as banded), "control" (an architecture without global average pooling: no bands expected),
# "rotated" (trained on inputs rotated by 90 degrees: vertical bands expected).
NETWORKS = [
    ("InceptionV1 mixed5b", "banded", "InceptionV1_-_modelzoo-mixed5b_5x5_w.json"),
    ("ResNet50 block4", "banded",
     "ResNet50_-_modelzoo-resnet_v2_50%2Fblock4%2Funit_3%2Fbottleneck_v2%2Fconv2%2Fweights%2Fread.json"),
    ("VGG19 conv5", "banded", "VGG19_-_modelzoo-conv5_3%2Fweights%2Fread.json"),
    ("AlexNet conv5", "control", "AlexNet_-_modelzoo-conv5%2Fweights%2Fread.json"),
    ("simplified net 5b", "banded", "Simplified-Base-v0%2Fv1%2F5b%2Fweights%2Fread.json"),
    ("simplified net, rotated inputs", "rotated", "Simplified-90deg-v0%2Fv1%2F5b%2Fweights%2Fread.json"),
    ("simplified net, no GAP", "control", "Simplified-fc-only-v0%2Fv1%2F5b%2Fweights%2Fread.json"),
]
MEASURED = ("row share R and column share C of the spatial variance of every neuron's published NMF picture "
            "(its 3 factors as RGB pixel values), pooled over the layer's neurons (analysis.core.banding.picture_banding)")
_IMG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', re.IGNORECASE)


class Failure(Exception):
    """One line for the user: which repository or file, and what is wrong with it."""


def git(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    if proc.returncode != 0:
        raise Failure(f"{repo}: git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def pictures(figure: dict, where: str) -> np.ndarray:
    """A reduced-weights figure's pictures, [neurons, h, w, 3] uint8, in the figure's reading order."""
    from PIL import Image

    cells = [cell for row in figure.get("reduced_weights") or [] for cell in row]
    if not cells:
        raise Failure(f"{where}: no reduced_weights pictures")
    out = []
    for i, cell in enumerate(cells):
        found = _IMG.search(cell)
        if found is None:
            raise Failure(f"{where}: picture {i} is not a base64 PNG <img>")
        out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(found.group(1)))).convert("RGB")))
    if len({p.shape for p in out}) != 1:
        raise Failure(f"{where}: pictures of different sizes {sorted({p.shape for p in out})}")
    return np.stack(out)


def measure(repo: Path) -> dict:
    commit = git(repo, "rev-parse", "HEAD").decode().strip()
    rows = []
    for name, role, file in NETWORKS:
        path = FOLDER + file
        figure = json.loads(git(repo, "show", f"{commit}:{path}"))
        pics = pictures(figure, path)
        scores = picture_banding(pics)
        rows.append({"network": name, "role": role, "R": round(scores["R_layer"], 4), "C": round(scores["C_layer"], 4),
                     "baseline_R": round(scores["baseline_R"], 4), "baseline_C": round(scores["baseline_C"], 4),
                     "neurons": int(pics.shape[0]), "kernel": f"{pics.shape[1]}x{pics.shape[2]}",
                     "file": path, "model_name": figure.get("model_name"), "layer": figure.get("layer")})
    return {"schema": SCHEMA, "repository": REPO_URL, "commit": commit, "measured": MEASURED,
            "command": "python bench/published_banding.py --repo <clone of the repository>", "networks": rows}


def module_text(result: dict) -> str:
    return ('"""Generated by bench/published_banding.py from the Distill "Weight Banding" article\'s published NMF '
            'pictures:\ndo not edit; rerun the script (its docstring says how)."""\n\nPUBLISHED = '
            + pprint.pformat(result, width=116, sort_dicts=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=f"a clone (git directory) of {REPO_URL}")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the numbers (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="recompute and compare with --out; write nothing")
    args = parser.parse_args(argv)
    try:
        result = measure(args.repo)
    except (Failure, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = module_text(result)
    for row in result["networks"]:
        print(f"{row['network']:32s} {row['kernel']} x{row['neurons']:4d}  R {row['R']:.3f}  C {row['C']:.3f}  "
              f"(random {row['baseline_R']:.3f})")
    if args.check:
        committed = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if committed != text:
            print(f"error: {args.out} differs from the recomputed numbers (run without --check to rewrite it)",
                  file=sys.stderr)
            return 1
        print(f"{args.out}: matches")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
