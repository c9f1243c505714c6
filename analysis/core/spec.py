"""What the analysis is asked to do (the models, the site's settings) and what its stages share (torch-free)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "vw-analysis/1"  # the "schema" field of every analysis record (analysis/SCHEMA.md)
DEFAULT_IMAGE_SIZE = 224  # a bring-your-own model without image_size (said in the build's output)
# The choices site.yml, front matter and build.py offer, named once here (torch-free, so the render side checks them).
BACKENDS = ("local", "dask")  # analysis.parallel
DEVICES = ("auto", "cpu", "cuda")  # analysis.device
NAMED_DATASETS = ("photos", "mnist")  # analysis.core.image_sets; anything else is a folder of images

# Feature-visualization quality. size/steps are the look-vs-cost knobs; see bench/featureviz_cost.py for the measured
# cost per neuron. Chosen by eye on EfficientNet-Lite0 (_blocks.2/.7/.14) and the trained lab net: 128 steps at lr 0.1
# look like Lucid's 256 steps at 0.05 for half the cost; 128 steps at 0.05 stay washed out. "high" is Lucid's own.
QUALITY_PRESETS: dict[str, dict[str, Any]] = {
    "draft": {"size": 48, "steps": 64, "lr": 0.1, "seed": 0},
    "default": {"size": 64, "steps": 128, "lr": 0.1, "seed": 0},
    "high": {"size": 128, "steps": 512, "lr": 0.05, "seed": 0},
}
DEFAULT_QUALITY = "default"
# site.yml's analysis.examples: examples per neuron, at most this many from one image, images in all (None: every one),
# seconds per model and build (None: no limit). Torch-free, so the render side fills the same defaults.
EXAMPLES_SETTINGS: dict[str, Any] = {"top": 8, "per_image": 2, "count": None, "seconds": None}
# site.yml's analysis.featureviz when it is not set (the render side reads it too: this module is torch-free).
SITE_FEATUREVIZ = {k: QUALITY_PRESETS[DEFAULT_QUALITY][k] for k in ("size", "steps")}


@dataclass
class ModelSpec:
    """A model the articles need: a zoo name, or bring-your-own (`factory` + `weights`)."""

    name: str
    factory: str | None = None
    weights: str | None = None
    kwargs: dict = field(default_factory=dict)
    image_size: int | None = None
    search_path: str | None = None  # folder put on sys.path to import a bring-your-own factory
    dataset: str = "photos"  # where dataset examples come from: photos, mnist or a folder (analysis.core.image_sets)
    recipe: dict | None = None  # the author's recipe choices (analysis.recipes.RecipeSpec fields)


@dataclass
class AnalysisConfig:
    models: list[ModelSpec]
    cache_dir: Path
    n_jobs: int = 2
    featureviz: dict = field(default_factory=lambda: dict(SITE_FEATUREVIZ))
    lab: dict = field(default_factory=dict)
    fingerprint: str = ""
    featureviz_budget: dict = field(default_factory=dict)  # {count, seconds}: per-neuron pictures for the explorer
    backend: str = "local"  # analysis.parallel.BACKENDS; never part of a cache key (results are identical)
    scheduler: str | None = None  # the Dask scheduler's address for backend "dask"
    device: str = "auto"  # analysis.device.CHOICES; never part of a cache key
    debug: bool = False  # build.py --debug: say more (every cause behind a block note); never part of a cache key
    examples: dict = field(default_factory=dict)  # {top, per_image, count, seconds}: analysis.examples_stage.SETTINGS


@dataclass
class Subject:
    """One loaded model as every analysis stage sees it: its name, the module, its facts and its recipe."""

    name: str
    model: Any  # torch.nn.Module (no torch import here)
    info: dict
    recipe: Any  # analysis.recipes.Recipe

    @property
    def folder(self) -> str:
        """Its folder's name under <cache>/analysis/ (and featureviz/): the one safe-name rule, never the raw name."""
        from analysis.core.paths import safe_component

        return safe_component(self.name)


@dataclass
class Workspace:
    """Where the stages write and what the site asks of them."""

    cache_dir: Path
    root: Path  # <cache>/analysis
    n_jobs: int
    featureviz: dict  # the site's feature-visualization quality {size, steps}
    progress: bool = True
    device: str = "cpu"  # where feature visualization and expanded weights run (analysis.device)
    budget: Any = None  # analysis.featureviz.budget.Budget shared by every model of the build, or None

    def log(self, msg: str) -> None:
        log(self.progress, msg)

    def model_dir(self, s: Subject) -> Path:
        """Where one model's records live: a folder per model key (weights, and for a bring-your-own model its code,
        kwargs and image size), so going back to an earlier setting finds that setting's records (the pipeline
        keeps the few most recently used: prune_variants)."""
        return self.root / s.folder / variant_name(s.info["weights_sha256"])


def variant_name(model_key: str) -> str:
    return model_key[:16]


KEPT_VARIANTS = 3  # model keys whose records are kept per model (the live one and the two used before it)


def prune_variants(folder: Path, live: str) -> None:
    """Keep the live model key's folder of one model and the ``KEPT_VARIANTS - 1`` others used most recently (a
    folder's mtime says when it was last used: touched here); delete the rest and anything else in ``folder``
    (records of the layout before model keys)."""
    import os
    import shutil

    current = folder.parent / live
    if not current.is_dir():
        return
    os.utime(current)
    others = sorted((p for p in folder.iterdir() if p != current), key=lambda p: -p.lstat().st_mtime_ns)
    keep = [p for p in others if p.is_dir() and not p.is_symlink() and len(p.name) == 16][:KEPT_VARIANTS - 1]
    for path in others:
        if path not in keep:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def log(progress: bool, msg: str) -> None:
    if progress:
        print(f"  analysis: {msg}", flush=True)
