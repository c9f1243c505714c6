"""Bring-your-own models through the analysis pipeline: block-level results from factory + weights alone, cache keys
that cover kwargs and image size, and a re-run that touches only the model whose declaration changed."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from analysis.core import jsonio
from analysis.pipeline import AnalysisConfig, ModelSpec, run

FACTORY = '''
import torch
from torch import nn


def cbr(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6())


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.skip = stride == 1 and cin == cout
        self.conv = nn.Sequential(cbr(cin, 4 * cin, 1), cbr(4 * cin, 4 * cin, 3, stride, groups=4 * cin),
                                  nn.Conv2d(4 * cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.skip else self.conv(x)


class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.features = nn.Sequential(cbr(3, width, 3, 2), Block(width, width, 1), Block(width, 12, 2), cbr(12, 24, 1))
        self.classifier = nn.Linear(24, 4)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def make(width=8):
    return Net(width)
'''


@pytest.fixture()
def article(tmp_path: Path) -> Path:
    folder = tmp_path / "article"
    folder.mkdir()
    (folder / "tinynet.py").write_text(FACTORY)
    import importlib.util

    spec = importlib.util.spec_from_file_location("tinynet_for_weights", folder / "tinynet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    torch.save(module.make().state_dict(), folder / "tiny.pt")
    torch.save(module.make().state_dict(), folder / "other.pt")
    return folder


def spec(article: Path, name: str, weights: str = "tiny.pt", **extra) -> ModelSpec:
    return ModelSpec(name=name, factory="tinynet:make", weights=str(article / weights), search_path=str(article),
                     **extra)


def analyse(cache: Path, specs: list[ModelSpec], capsys, n_jobs: int = 1) -> tuple[dict, str]:
    path = run(AnalysisConfig(models=specs, cache_dir=cache, n_jobs=n_jobs, featureviz={"size": 32, "steps": 2}))
    return jsonio.read_json(path), capsys.readouterr().out


@pytest.mark.slow
def test_factory_weights_and_image_size_alone_give_block_level_results(article, tmp_path, capsys):
    # Two workers: the factory module next to the article travels to them by value (it is not importable there).
    manifest, _ = analyse(tmp_path / "cache", [spec(article, "tiny", image_size=32)], capsys, n_jobs=2)
    entry = manifest["models"]["tiny"]
    kinds = {t["id"]: (t["kind"], t["shape"]) for t in entry["tensors"]}
    assert kinds == {
        "features.0.0": ("kernel", [8, 3, 3, 3]),
        "features.0->features.1": ("block", [8, 8, 3, 3]),
        "features.1->features.2+features.3": ("block", [24, 8, 3, 3]),  # the 1x1 head conv joins the last block
    }
    assert [b["kind"] for b in entry["blocks"]] == ["conv", "inverted residual", "inverted residual"]
    assert entry["label"] == "tiny" and entry["featured_nmf"]
    context = jsonio.read_json(tmp_path / "cache" / "analysis" / entry["context"][0]["file"])
    assert (context["lower"], context["upper"]) == ("features.0", "features.1")
    assert len(context["featureviz"]["upper"]) == len(context["outs"])


def assert_own_colours(cache: Path, models: list[str]) -> None:
    """Two bring-your-own models in one chart (its static SVG, drawn by Vega as the page draws it): a legend entry
    and a colour each."""
    import re

    from article.figures import figrender, registry

    registry.discover()
    ctx = registry.FigureContext(article={}, site={}, cache_dir=cache, slug="s", figure_id="byo-banding")
    svg = figrender.make_output("banding_layers", {"models": ",".join(models)}, ctx).svg
    entries = re.findall(r'class="mark-symbol role-legend-symbol[^"]*"><path[^>]*fill="([^"]+)"', svg)
    labels = re.findall(r'class="mark-text role-legend-label[^"]*"><text[^>]*>([^<]*)</text>', svg)
    assert labels == models and len(set(entries)) == len(models), (labels, entries)


@pytest.mark.slow
def test_a_declaration_change_reanalyses_only_that_model(article, tmp_path, capsys):
    cache = tmp_path / "cache"
    first, _ = analyse(cache, [spec(article, "a", image_size=32), spec(article, "b", "other.pt", image_size=32)],
                       capsys)
    assert_own_colours(cache, ["a", "b"])
    changed = spec(article, "b", "other.pt", image_size=32, kwargs={"width": 8})  # same network, new kwargs
    second, out = analyse(cache, [spec(article, "a", image_size=32), changed], capsys)
    assert "a: unchanged, reused without loading it" in out
    assert "b: unchanged" not in out
    assert second["models"]["a"] == first["models"]["a"]
    # kwargs are part of the model key: b's feature visualizations are not served from the old key
    assert first["models"]["b"]["info"]["weights_sha256"] != second["models"]["b"]["info"]["weights_sha256"]
    third, out = analyse(cache, [spec(article, "a", image_size=48), changed], capsys)
    assert "b: unchanged, reused" in out and "a: unchanged" not in out
    assert third["models"]["a"]["info"]["input_size"] == [48, 48]


@pytest.mark.slow
def test_a_damaged_result_is_recomputed_not_reused(article, tmp_path, capsys):
    cache = tmp_path / "cache"
    first, _ = analyse(cache, [spec(article, "a", image_size=32)], capsys)
    victim = cache / "analysis" / first["models"]["a"]["tensors"][0]["file"]
    victim.write_text("{}")
    _, out = analyse(cache, [spec(article, "a", image_size=32)], capsys)
    assert "a: unchanged" not in out
    assert jsonio.read_json(victim)["shape"] == [8, 3, 3, 3]


def test_the_model_key_covers_a_factory_package_in_the_article_folder(article, tmp_path):
    from analysis.pipeline import _spec_key

    package = article / "nets"
    package.mkdir()
    (package / "__init__.py").write_text("from nets.impl import make\n")
    (package / "impl.py").write_text(FACTORY)
    declared = ModelSpec(name="p", factory="nets:make", weights=str(article / "tiny.pt"), search_path=str(article))
    cfg = AnalysisConfig(models=[declared], cache_dir=tmp_path)
    before = _spec_key(declared, cfg, tmp_path)
    (package / "impl.py").write_text(FACTORY.replace("4 * cin", "2 * cin"))  # an edit deep in the package
    assert _spec_key(declared, cfg, tmp_path) != before


@pytest.mark.slow
def test_going_back_to_an_earlier_setting_reuses_its_records(article, tmp_path, capsys):
    """32 -> 48 -> 32 px: the third run finds the first run's records (each model key has its own folder; the
    few most recently used are kept) instead of computing every tensor and context again."""
    cache = tmp_path / "cache"
    first, _ = analyse(cache, [spec(article, "a", image_size=32)], capsys)
    second, out = analyse(cache, [spec(article, "a", image_size=48)], capsys)
    assert "tensor(s) on" in out
    third, out = analyse(cache, [spec(article, "a", image_size=32)], capsys)
    assert "tensor(s) on" not in out and "context" not in out, out
    assert third["models"]["a"]["tensors"] == first["models"]["a"]["tensors"]
    assert third["models"]["a"]["context"] == first["models"]["a"]["context"]
    folders = sorted(p.name for p in (cache / "analysis" / "a").iterdir())
    assert len(folders) == 2 and third["models"]["a"]["folder"].split("/")[1] in folders
    # Only the live folder is listed (and checked on every build); more keys evict the least recently used (48 px).
    assert all(f["path"].startswith(third["models"]["a"]["folder"] + "/") for f in third["files"]
               if f["path"].startswith("a/"))
    for size in (40, 56):
        analyse(cache, [spec(article, "a", image_size=size)], capsys)
    kept = {p.name for p in (cache / "analysis" / "a").iterdir()}
    assert len(kept) == 3 and third["models"]["a"]["folder"].split("/")[1] in kept
    assert second["models"]["a"]["folder"].split("/")[1] not in kept
