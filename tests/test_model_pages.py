"""The weight explorer's render side (torch-free): a model page per analysed model, per-layer scripts whose numbers
are the analysis records', sprite pictures, page weight, and the link checker's understanding of #<layer>/<neuron>."""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from article.config.site import load_config
from article.explorer import model_pages
from article.explorer.explorer_data import LEVELS
from article.output import linkcheck
from article.output.writer import template_env
from article.structure.types import BuildReport
from explorer_cache import (EXAMPLE_CHANNEL, EXAMPLES_K, FOLDER, FV_CHANNELS, SHAPES, example_activation, example_rect,
                            make_cache, relist)

REPO = Path(__file__).resolve().parents[1]
PAGE_BUDGET = 2_500_000  # bytes a model page may transfer before the reader opens a second layer


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explorer")
    records = make_cache(tmp / "cache")
    site = tmp / "site"
    report = BuildReport(site_dir=site)
    listed = model_pages.write_model_pages(template_env(REPO), site, load_config(REPO), tmp / "cache", [], report)
    return site / "models" / "tinynet", records, listed, report


def script_payload(path: Path, call: str) -> dict:
    """The JSON a classic data script hands to VWExplorer.<call>(...)."""
    text = path.read_text(encoding="utf-8")
    m = re.fullmatch(rf"VWExplorer\.{call}\((.*)\);\n", text, re.S)
    assert m, text[:80]
    return json.loads(m.group(1))


def layer(folder: Path, tid: str) -> dict:
    return script_payload(folder / "layers" / f"{tid}.js", "layer")


def test_a_page_per_model_with_its_layers_in_order(built):
    folder, _, listed, report = built
    assert listed == [{"name": "tinynet", "label": "TinyNet", "href": "models/tinynet/index.html", "layers": 3,
                       "family": "test"}]
    assert report.pages == ["models/tinynet/index.html"]
    html = (folder / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr\b[^>]* id="([^"]+)" data-vw-neurons="(\d+)"', html)
    assert rows == [(t, str(s[0])) for t, s in SHAPES.items()]
    assert "2048 × 16 × 3 × 3" in html and "294,912" in html  # shape and parameters of conv3
    assert "style=" not in html  # the CSP allows no inline style


def test_layer_scripts_carry_the_records_numbers(built):
    folder, records, _, _ = built
    d1, d2, d3 = (layer(folder, t) for t in SHAPES)
    assert (d1["next"], d2["prev"], d2["next"], d3["prev"], d3["next"]) == ("conv2", "conv1", "conv3", "conv2", None)
    rec = records["conv3"]
    assert d3["n"] == 2048 and len(d3["norm"]) == len(d3["R"]) == len(d3["err"]) == 2048
    assert np.allclose(d3["norm"], rec["norm"], rtol=5e-4, atol=0)
    assert np.allclose(d3["err"], rec["nmf"]["neuron_error"], rtol=5e-4, atol=0)
    assert d3["inputs"]["index"] == rec["top_inputs"]["index"]
    kernel = np.asarray(rec["top_inputs"]["kernel"])  # [2048, 8, 3, 3]
    q = np.asarray(d3["inputs"]["kernel"]).reshape(kernel.shape)
    scale = np.asarray(d3["inputs"]["scale"])
    assert np.allclose(scale, np.abs(kernel).reshape(2048, -1).max(1), rtol=5e-4, atol=0)
    assert np.all(np.abs(q / LEVELS * scale[:, None, None, None] - kernel) <= scale[:, None, None, None] / LEVELS)
    # conv2's outputs are read off conv3's top_outputs: for each of conv2's 16 neurons, where it goes in conv3.
    assert d2["outputs"]["index"] == records["conv3"]["top_outputs"]["index"] and d3["outputs"] is None


def test_sprite_feature_visualizations_and_examples(built):
    from PIL import Image

    folder, records, _, _ = built
    d2 = layer(folder, "conv2")
    s = d2["sprite"]
    img = np.asarray(Image.open(folder / s["src"]).convert("RGB"))
    assert img.shape == (s["rows"] * 3, s["cols"] * 3, 3)
    n = 13
    y, x = (n // s["cols"]) * 3, (n % s["cols"]) * 3
    want = np.round(np.asarray(records["conv2"]["nmf"]["rgb"][n]) * 255)
    assert np.abs(img[y:y + 3, x:x + 3] - want).max() <= 1
    factors = np.asarray(d2["factors"][n]).reshape(3, 3, 3) / LEVELS  # [factor, h, w]: the picture's R, G, B
    assert np.abs(factors - np.asarray(records["conv2"]["nmf"]["rgb"][n]).transpose(2, 0, 1)).max() <= 0.5 / LEVELS
    assert sorted(map(int, d2["fv"])) == list(FV_CHANNELS) and not layer(folder, "conv1")["fv"]
    assert all((folder / p).is_file() for p in d2["fv"].values())



def examples_script(folder: Path, layer_name: str) -> dict:
    return script_payload(folder / "examples" / f"{layer_name}.js", "examples")


def test_every_layer_links_its_own_its_inputs_and_its_outputs_examples(built):
    """A layer's payload names three example scripts: its own neurons', the previous layer's (its inputs) and the
    next tensor's (its outputs); each script holds every channel's examples as rects in a copied picture."""
    folder, _, _, _ = built
    ref = {t: {"layer": t, "src": f"examples/{t}.js", "n": s[0]} for t, s in SHAPES.items()}
    assert layer(folder, "conv1")["ex"] == {"self": ref["conv1"], "prev": None, "next": ref["conv2"]}
    assert layer(folder, "conv2")["ex"] == {"self": ref["conv2"], "prev": ref["conv1"], "next": ref["conv3"]}
    assert layer(folder, "conv3")["ex"] == {"self": ref["conv3"], "prev": ref["conv2"], "next": None}
    p = examples_script(folder, "conv2")
    assert p["layer"] == "conv2" and p["n"] == 16 and len(p["ex"]) == 16 and p["labels"] == ["test photo"]
    assert p["pics"] == [["examples/pics/photo.png", 96, 64]] and (folder / "examples/pics/photo.png").is_file()
    row = p["ex"][EXAMPLE_CHANNEL]
    assert len(row) == EXAMPLES_K
    for rank, e in enumerate(row):
        at, rf_at = example_rect(EXAMPLE_CHANNEL, rank)
        act = float(f"{example_activation('conv2', EXAMPLE_CHANNEL, rank):.3g}")  # three significant digits
        assert e == [0, *at, *rf_at, act, 0]


def test_page_weight_before_the_reader_asks_for_more(built):
    """What opening the page loads: the HTML, the stylesheet and scripts, the first layer's script and sprite; what
    opening a neuron of the 2,048-neuron layer adds: its examples and its inputs' (the layer before)."""
    folder, _, _, _ = built
    first = folder / "index.html", REPO / "templates/assets/style.css", REPO / "templates/assets/site.js", \
        REPO / "templates/assets/explorer.js", folder / "layers/conv1.js", folder / "layers/conv1.png"
    assert sum(p.stat().st_size for p in first) < PAGE_BUDGET
    assert (folder / "layers/conv3.js").stat().st_size < 1_000_000  # 2,048 neurons, loaded only on request
    neuron = folder / "layers/conv3.js", folder / "layers/conv3.png", folder / "examples/conv3.js", \
        folder / "examples/conv2.js", folder / "examples/pics/photo.png"
    assert (folder / "examples/conv3.js").stat().st_size < 400_000  # 4 examples of each of 2,048 neurons
    assert sum(p.stat().st_size for p in first + neuron) < PAGE_BUDGET


def test_link_checker_understands_neuron_fragments(tmp_path, built):
    folder, _, _, _ = built
    site = folder.parent.parent
    links = ["#conv3/2047", "#conv3", "#conv1/7", "#conv3/2048", "#conv9/1", "#conv1/x", "#conv1/-1"]
    (site / "page.html").write_text("".join(f'<a href="models/tinynet/index.html{h}">x</a>' for h in links),
                                    encoding="utf-8")
    try:
        problems = [p for p in linkcheck.check_links(site) if p.startswith("page.html")]
    finally:
        (site / "page.html").unlink()
    bad = sorted(re.search(r"#(\S+)", p).group(1) for p in problems)
    assert bad == ["conv1/-1", "conv1/x", "conv3/2048", "conv9/1"], problems


def test_sitemap_lists_every_model_page(tmp_path, built):
    import xml.etree.ElementTree as ET

    from article.output.writer import Pages, write_site_files

    folder, _, listed, _ = built
    config = load_config(REPO)
    write_site_files(Pages(template_env(REPO), config, tmp_path, None, None, None), config, [], listed)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = [e.text for e in ET.parse(tmp_path / "sitemap.xml").getroot().findall("s:url/s:loc", ns)]
    assert locs == [f"{config.site_url}index.html", f"{config.site_url}models/tinynet/index.html"]
    assert (folder.parent.parent / locs[1].removeprefix(config.site_url)).is_file()


@pytest.mark.parametrize("tid", ["features.16->features.17+features.18", "_blocks.2->_blocks.3", "conv 1%"])
def test_fragment_round_trip(tid):
    href = model_pages.explorer_href("mobilenet-v2", tid, 12)
    path, _, frag = href.partition("#")
    assert path == "../models/mobilenet-v2/index.html" and unquote(frag) == f"{tid}/12"
    assert ">" not in frag and " " not in frag


def test_render_cache_reuses_and_invalidates(tmp_path):
    from article.output.sitedir import tree_digest

    cache = tmp_path / "cache"
    make_cache(cache)

    def build(name: str) -> Path:
        site = tmp_path / name
        model_pages.write_model_pages(template_env(REPO), site, load_config(REPO), cache, [], BuildReport(site_dir=site))
        return site

    first = build("a")
    slots = list((cache / "render").glob("explorer-tinynet-*.zip"))
    assert len(slots) == 1
    assert tree_digest(build("b")) == tree_digest(first)  # from the zip: the same bytes
    record = cache / "analysis" / FOLDER / "tensors" / "conv1.json"
    data = json.loads(record.read_text())
    data["norm"][0] = 123.25
    record.write_text(json.dumps(data))
    relist(cache)  # as the analysis lists what it rewrote
    assert layer(build("c") / "models" / "tinynet", "conv1")["norm"][0] == 123.2
    assert len(list((cache / "render").glob("explorer-tinynet-*.zip"))) == 1


def test_a_corrupt_record_is_one_error_naming_the_file(tmp_path):
    from article.structure.errors import BuildError

    cache = tmp_path / "cache"
    make_cache(cache)
    record = cache / "analysis" / FOLDER / "tensors" / "conv2.json"
    record.write_text('{"shape": [16, 8', encoding="utf-8")
    with pytest.raises(BuildError) as exc:
        model_pages.write_model_pages(template_env(REPO), tmp_path / "site", load_config(REPO), cache, [],
                                      BuildReport(site_dir=tmp_path / "site"))
    assert str(record) in str(exc.value) and "not valid JSON" in str(exc.value)


@pytest.mark.slow
def test_an_unchanged_model_folder_is_linked_from_the_previous_site_without_reading_it(tmp_path, monkeypatch):
    """The cache records each model folder's key and listing for the site a build made; the next build hard-links a
    matching folder and renders nothing for it, and writes it anew when its inputs changed, the site was replaced
    by another build, or the previous folder is not what was recorded (a file gone, a symlink planted)."""
    import os
    import shutil

    from article.output import sitedir

    make_cache(tmp_path / "cache")
    env, config = template_env(REPO), load_config(REPO)

    def build(name: str, previous: Path | None, cfg=config) -> Path:
        site = tmp_path / name
        site.mkdir()
        (site / sitedir.SITE_MARKER).write_bytes(sitedir.MARKER_TEXT)
        model_pages.write_model_pages(env, site, cfg, tmp_path / "cache", [], BuildReport(site_dir=site), previous,
                                      site_dir=site)  # built in place: the temp folder is the site
        return site

    first = build("one", None)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file() and p.name != sitedir.SITE_MARKER)
    calls = []
    real = model_pages.model_files
    monkeypatch.setattr(model_pages, "model_files", lambda *a: calls.append(a[0]) or real(*a))
    real_load = model_pages.cache.load  # every read of the explorer data is seen (a miss, so model_files runs)
    monkeypatch.setattr(model_pages.cache, "load",
                        lambda path, decode: None if path is not None and path.name.startswith("explorer-")
                        else real_load(path, decode))
    second = build("two", first)
    assert calls == []
    assert all(os.path.samefile(first / f, second / f) for f in files)

    marker = second / sitedir.SITE_MARKER
    marker.unlink()
    marker.write_bytes(sitedir.MARKER_TEXT)  # another build made this site (every build writes its own marker)
    build("two-b", second)
    assert calls == ["tinynet"]
    calls.clear()

    (first / "models" / "tinynet" / "layers" / "conv1.js").unlink()  # the previous site is not what it recorded
    third = build("three", first)
    assert calls == ["tinynet"]
    assert (third / "models" / "tinynet" / "layers" / "conv1.js").read_bytes() == \
        (second / "models" / "tinynet" / "layers" / "conv1.js").read_bytes()
    shutil.rmtree(first / "models")
    (first / "models").mkdir()
    os.symlink(third / "models" / "tinynet", first / "models" / "tinynet")  # same listing, but a symlink
    build("four", first)
    assert calls == ["tinynet"] * 2
    other = build("five", third, dataclass_replace(config, title="Another title"))  # its pages' inputs changed
    assert calls == ["tinynet"] * 3
    assert "Another title" in (other / "models" / "tinynet" / "index.html").read_text(encoding="utf-8")
    assert sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file() and p.name != sitedir.SITE_MARKER) \
        == files


def dataclass_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_a_block_reads_the_previous_block_not_the_last_kernel_inside_it():
    entries = [{"id": "layer3.1->layer4.0", "layer": "layer4.0", "source": "layer3.1", "next": "layer4.0->layer4.1"},
               {"id": "layer4.0.conv2", "layer": "layer4.0.conv2", "source": None, "next": "layer4.0->layer4.1"},
               {"id": "layer4.0->layer4.1", "layer": "layer4.1", "source": "layer4.0", "next": None},
               {"id": "conv1", "layer": "conv1", "source": None, "next": "conv2"},
               {"id": "conv2", "layer": "conv2", "source": None, "next": None}]
    assert model_pages.reads_from(entries, entries[2]) == "layer3.1->layer4.0"
    assert model_pages.reads_from(entries, entries[4]) == "conv1"  # kernels: the one whose next it is
    assert model_pages.reads_from(entries, entries[3]) is None


def test_index_tells_models_with_the_same_label_apart(tmp_path):
    from article.output.writer import render_template

    models = [{"name": f"lab-gap-s{i}", "label": "lab: GAP", "href": f"models/lab-gap-s{i}/index.html", "layers": 6,
               "family": "lab"} for i in range(3)] + [{"name": "digitnet", "label": "digitnet",
                                                       "href": "models/digitnet/index.html", "layers": 3, "family": ""}]
    config = load_config(REPO)
    html = render_template(template_env(REPO), "index.html", site=config, site_raw=config.raw, root="",
                           page_url=config.site_url + "index.html", articles=[], models=models)
    texts = [re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<a href="models/[^"]+">(.*?)</a>', html)]
    assert len(texts) == 4 and len(set(texts)) == 4, texts
    assert "digitnet digitnet" not in texts  # a label equal to the name is not repeated


def test_a_pictures_name_in_the_site_does_not_carry_the_model_key():
    """The analysis keeps a model's records in a folder per model key; the site names pictures as before, so a
    reader's URL does not change with the cache's layout."""
    model = {"folder": "m/0123456789abcdef"}
    assert model_pages._site_name("analysis/m/0123456789abcdef/examples/c-1-0.png", "m", model) == \
        "analysis/m/examples/c-1-0.png"
    assert model_pages._site_name("m/conv1/c0001-abc.png", "m", model) == "m/conv1/c0001-abc.png"


def test_jpeg_example_pictures_reach_the_model_page(tmp_path):
    """Photos and crop strips are JPEG (analysis/examples_stage.py): the page ships them, as it ships PNG sprites;
    a name that leads out of the cache ships nothing."""
    import io

    from PIL import Image

    cache = tmp_path / "cache"
    make_cache(cache)
    root = cache / "analysis"
    manifest = json.loads((root / "manifest.json").read_text())
    model = manifest["models"]["tinynet"]
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 40, 40)).save(buf, format="JPEG")
    jpg = f"{FOLDER}/examples/pics/photo.jpg"
    (root / jpg).write_bytes(buf.getvalue())
    for layer in SHAPES:
        path = root / FOLDER / "examples" / f"{layer}.json"
        record = json.loads(path.read_text())
        record["pictures"][0]["file"] = jpg
        path.write_text(json.dumps(record))
    relist(cache)
    _, files = model_pages.model_files("tinynet", model, cache, [])
    assert files["examples/pics/photo.jpg"] == buf.getvalue()
    assert model_pages._example_picture(root, "../../etc/passwd") is None
