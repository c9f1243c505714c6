"""Fetch a torchvision weights file for the Pages deployment, and refuse it unless it is the right file.

    python .github/fetch_weights.py URL [--dest DIR]

The build itself never downloads anything; the Pages workflow runs this before `python build.py` so that the
published site includes InceptionV1 (URL: torchvision's googlenet-1378be20.pth). The file lands in DIR (default:
the torch hub cache, `$TORCH_HOME/hub/checkpoints` or `~/.cache/torch/hub/checkpoints`, where the build looks for
it) under the name in the URL, and only after three checks, as torchvision's own loader makes them: its sha256
starts with the 8 hex digits in its name, it loads with `torch.load(weights_only=True)`, and its keys and shapes are
exactly those of the architecture written in analysis/models (through the build's own loader). A file already in
DIR that passes them is kept (the workflow caches DIR between runs) and nothing is downloaded. Any failure prints
one line and exits 1, leaving no file behind.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_BYTES = 1 << 30  # torchvision's largest ImageNet file (ViT-H) is ~2.5 GB; ours are all below 600 MB
TIMEOUT_S = 60


class Refused(Exception):
    """One line: which file and why it is not used."""


def zoo_name(filename: str) -> str:
    """The build's model name for a torchvision file name (googlenet-1378be20.pth -> inceptionv1)."""
    from analysis.core import tv_weights

    for name, weights in tv_weights.BY_MODEL.items():
        if filename.split("-")[0] == weights.filename.split("-")[0]:
            return name
    raise Refused(f"{filename}: not a torchvision file this project knows "
                  f"({', '.join(w.filename for w in tv_weights.BY_MODEL.values())})")


def check(path: Path, name: str) -> None:
    """The sha256 prefix in the file's name, then the build's own loader: weights_only, exact keys and shapes."""
    from analysis.core import tv_weights
    from analysis.core.errors import AnalysisError

    prefix = tv_weights.name_prefix(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(prefix):
        raise Refused(f"{path.name}: sha256 {digest.hexdigest()[:16]}... does not start with {prefix}, the prefix in "
                      "its name: a different or damaged file, refused")
    from analysis.models import tv_zoo  # torch: only for a file whose hash is right

    try:
        tv_zoo.load(name, path, expected_sha256_prefix=prefix)
    except AnalysisError as exc:  # WeightsError: unreadable, unsafe, or wrong keys or shapes
        raise Refused(" ".join(str(exc).split())) from None


def download(url: str, to: Path) -> None:
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise Refused(f"{url}: only http(s) URLs are fetched")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(to, "wb") as out:
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise Refused(f"{url}: larger than {MAX_BYTES >> 20} MB, refused")
                out.write(chunk)
    except OSError as exc:  # URLError, HTTPError, timeouts
        raise Refused(f"{url}: download failed ({getattr(exc, 'reason', None) or exc})") from None


def fetch(url: str, dest: Path) -> tuple[Path, bool]:
    """(the checked file in dest, whether it was downloaded now)."""
    from analysis.core import tv_weights

    filename = Path(urllib.parse.urlsplit(url).path).name
    if tv_weights.name_prefix(filename) is None:
        raise Refused(f"{url}: the file name has no sha256 prefix (torchvision names files <name>-<8 hex>.pth)")
    name = zoo_name(filename)
    target = dest / filename
    if target.is_file():
        try:
            check(target, name)
            return target, False
        except Refused:
            target.unlink()  # damaged in the cache: fetch it again
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        part = Path(tmp) / filename  # checked under its own name (the prefix), moved in only when it passes
        download(url, part)
        check(part, name)
        os.replace(part, target)
    return target, True


def default_dest() -> Path:
    from analysis.core import paths

    return paths.torch_hub_checkpoint("x").parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="e.g. https://download.pytorch.org/models/googlenet-1378be20.pth")
    parser.add_argument("--dest", type=Path, default=None, help="folder for the file (default: the torch hub cache)")
    args = parser.parse_args(argv)
    try:
        path, fresh = fetch(args.url, (args.dest or default_dest()).expanduser())
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {'downloaded' if fresh else 'already present'}, sha256 prefix, keys and shapes checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
