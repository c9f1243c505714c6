"""A worked reading of one neuron (issue 20 item 6): the analysis record (strongest inputs by kernel norm, their
kernels, feature visualizations of the neuron, its inputs and its NMF factors) and the figure drawn from it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from analysis.core import jsonio
from analysis.reading import reading, strongest_inputs, top_loadings
from test_pipeline_byo import analyse, article, spec  # noqa: F401  (the fixture, with its tiny inverted-residual net)


def test_strongest_inputs_rank_kernels_by_norm_with_ties_by_index():
    k = np.zeros((5, 3, 3), np.float32)
    k[1, 1, 1] = -2.0   # norm 2: strongest, though negative
    k[3] = 0.5          # norm 1.5
    k[4, 0, 0] = 1.5    # norm 1.5: tie with 3, lower index first
    assert strongest_inputs(k, 3) == [1, 3, 4]
    assert strongest_inputs(k, 9) == [1, 3, 4, 0, 2]


def test_top_loadings_keep_the_sign():
    assert top_loadings(np.array([0.1, -0.5, 0.3]), 2) == [{"channel": 1, "loading": -0.5},
                                                            {"channel": 2, "loading": pytest.approx(0.3)}]


def test_a_reading_holds_the_kernels_it_ranks_and_one_scale():
    rng = np.random.default_rng(0)
    kernels = rng.normal(size=(6, 3, 3)).astype(np.float32)
    asked = []

    def images(side, chans):
        asked.append((side, list(chans)))
        return [f"{side}-{c}.png" for c in chans]

    nmf = {"rgb": np.zeros((3, 3, 3)), "spatial": np.ones((3, 3, 3)), "channels": rng.normal(size=(3, 6))}
    rec = reading(4, kernels, 3, images, nmf, lambda d: [f"dir-{i}" for i in range(len(d))])
    ins = [i["channel"] for i in rec["inputs"]]
    assert ins == strongest_inputs(kernels, 3)
    assert asked == [("upper", [4]), ("lower", ins)]
    for i in rec["inputs"]:
        np.testing.assert_array_equal(i["kernel"], kernels[i["channel"]])
        assert i["sum"] == pytest.approx(float(kernels[i["channel"]].sum()), rel=1e-6)
    assert rec["scale"] == pytest.approx(float(np.abs(kernels[ins]).max()))
    assert [f["featviz"] for f in rec["nmf"]["factors"]] == ["dir-0", "dir-1", "dir-2"]


@pytest.mark.slow
def test_the_pipeline_reads_the_neurons_the_recipe_names_and_the_figure_draws_them(article, tmp_path, capsys):  # noqa: F811
    from article.figures import reading as figure  # registers weight_reading
    from article.figures.registry import FigureContext

    recipe = {"context": [{"weights": "features.0 -> features.1", "read": [5, 2], "read_inputs": 3}]}
    manifest, _ = analyse(tmp_path / "cache", [spec(article, "tiny", image_size=32, recipe=recipe)], capsys)
    root = tmp_path / "cache" / "analysis"
    entry = manifest["models"]["tiny"]
    rec = jsonio.read_json(root / entry["context"][0]["file"])
    tensor = jsonio.read_json(root / next(t["file"] for t in entry["tensors"] if t["id"] == rec["tensor"]))
    weight = np.asarray(tensor["weight"], np.float32)
    assert [r["neuron"] for r in rec["readings"]] == [2, 5]
    for r in rec["readings"]:
        o = r["neuron"]
        assert [i["channel"] for i in r["inputs"]] == strongest_inputs(weight[o], 3)
        for i in r["inputs"]:
            np.testing.assert_allclose(i["kernel"], weight[o, i["channel"]], atol=1e-6)
            assert (tmp_path / "cache" / i["featviz"]).is_file()
        assert (tmp_path / "cache" / r["featviz"]).is_file()
        loadings = np.asarray(tensor["nmf"]["channels"][o])
        assert [f["top"][0]["channel"] for f in r["nmf"]["factors"]] == [int(np.argmax(np.abs(v))) for v in loadings]
        assert all((tmp_path / "cache" / f["featviz"]).is_file() for f in r["nmf"]["factors"])

    ctx = FigureContext(article={}, site={}, cache_dir=tmp_path / "cache", slug="a", figure_id="read")
    fig = figure.weight_reading(ctx, {"model": "tiny", "neuron": "5"})
    read = next(r for r in rec["readings"] if r["neuron"] == 5)
    cards = re.findall(r'<li class="vw-input">(.*?)</li>', fig.html)
    assert len(cards) == 3
    scale = max(abs(v) for i in read["inputs"] for row in i["kernel"] for v in row)
    for card, i in zip(cards, read["inputs"]):
        assert f"features.0 {i['channel']}" in card  # the input neuron's id
        cells = re.findall(r'<rect x="\d+" y="\d+" width="(\d+)" height="(\d+)" fill="(#[0-9a-f]{6})"><title>[^<]*: '
                           r'([-+][0-9.e+-]+)</title>', card)
        assert len(cells) == 9 and all(w == h for w, h, _, _ in cells)  # square cells, one per weight
        for _, _, fill, value in cells:
            r, g, b = (int(fill[k:k + 2], 16) for k in (1, 3, 5))
            if float(value) > 0.2 * scale:
                assert r > b, (fill, value)  # red is positive
            elif float(value) < -0.2 * scale:
                assert b > r, (fill, value)  # blue is negative
    assert f"{scale:+.3g}" in fig.html and "excited" in fig.html and "inhibited" in fig.html  # the legend
    # the neuron, its three inputs, its three NMF factors; dataset examples: 4 of the neuron, 2 of each input
    assert all(len(re.findall(r'alt="dataset example \d of features\.0 neuron', card)) == 2 for card in cards)
    assert len(re.findall(r'alt="dataset example \d of features\.1 neuron 5', fig.html)) == 4
    assert len(fig.assets) == 1 + 3 + 3 + 4 + 3 * 2
    with pytest.raises(Exception, match="neuron=7 has no reading"):
        figure.weight_reading(ctx, {"model": "tiny", "neuron": "7"})


@pytest.mark.slow
def test_featured_neurons_and_their_nmf_factors_are_drawn_and_reach_the_model_page(article, tmp_path, capsys):  # noqa: F811
    from article.explorer import explorer_data as xd
    from article.explorer.model_pages import model_files

    manifest, _ = analyse(tmp_path / "cache", [spec(article, "tiny", image_size=32)], capsys)
    cache, entry = tmp_path / "cache", manifest["models"]["tiny"]
    listing = jsonio.read_json(cache / "analysis" / entry["neuron_featureviz"]["file"])
    for tid in entry["featured_nmf"]:  # every neuron the NMF explorer shows has a picture, whatever the budget
        t = next(t for t in entry["tensors"] if t["id"] == tid)
        assert sorted(map(int, listing["layers"][t["layer"]])) == list(range(t["shape"][0]))
        factors = listing["factors"][tid]
        assert len(factors) == 2 and all(len(p) == 3 and all((cache / x).is_file() for x in p) for p in factors.values())
    fv = jsonio.read_json(cache / "featureviz" / "manifest.json")
    rows, files = model_files("tiny", entry, cache, fv)
    tid = entry["featured_nmf"][-1]
    stem = Path(next(t["file"] for t in entry["tensors"] if t["id"] == tid)).stem
    script = files[f"layers/{stem}.js"].decode()
    payload = __import__("json").loads(script[script.index("(") + 1:script.rindex(")")])
    assert payload["ffv"].keys() == listing["factors"][tid].keys()
    assert all(files[p] == (cache / rel).read_bytes()
               for n, ps in payload["ffv"].items() for p, rel in zip(ps, listing["factors"][tid][n]))
    assert xd.factor_featureviz(listing, "no such tensor") == {}


@pytest.mark.slow
def test_featureviz_budget_all_draws_every_neuron_and_factor(article, tmp_path, capsys):  # noqa: F811
    """What --device cuda does by default (Microscope-style), run on the CPU as a smoke test of that path."""
    from analysis.pipeline import AnalysisConfig, ModelSpec, run  # noqa: F401

    path = run(AnalysisConfig(models=[spec(article, "tiny", image_size=32)], cache_dir=tmp_path / "c", n_jobs=1,
                              featureviz={"size": 32, "steps": 2}, featureviz_budget="all"))
    entry = jsonio.read_json(path)["models"]["tiny"]
    listing = jsonio.read_json(tmp_path / "c" / "analysis" / entry["neuron_featureviz"]["file"])
    for t in entry["tensors"]:
        assert len(listing["layers"][t["layer"]]) == t["shape"][0]
        if t.get("nmf_error") is not None and t["id"] != entry["first_layer"]["layer"]:  # not the image's colours
            assert len(listing["factors"][t["id"]]) == t["shape"][0]
    assert "budget per model: every neuron, 8 rendered now" in capsys.readouterr().out  # the stem's 8 were left
