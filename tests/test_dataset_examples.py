"""Dataset examples from one pass over an image set (analysis/examples_stage.py): the true top activations (checked
against a brute-force sliding window on a tiny network, at one and at several scales), spread within an image,
extended incrementally and resumed after a time budget (equal to one uninterrupted pass), gray models in gray, and
the named sets read from installed files only."""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from analysis import examples_stage
from analysis.core import image_sets, jsonio
from analysis.example_pass import receptive_field
from analysis.examples import resize_photo
from analysis.recipes import Recipe, TensorJob
from analysis.core.spec import Subject, Workspace


def no_pad_net(stride: int = 1, channels_in: int = 3) -> nn.Module:
    """conv3x3 -> relu -> conv3x3, no padding: position (y, x) of conv2 sees exactly the input window
    [s*y, s*y + rf) x [s*x, s*x + rf), rf = 5 (stride 1) or 7 (stride 2)."""
    g = torch.Generator().manual_seed(3)
    net = nn.Sequential(OrderedDict(conv1=nn.Conv2d(channels_in, 5, 3, stride=stride), relu=nn.ReLU(),
                                    conv2=nn.Conv2d(5, 4, 3)))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net.eval()


def write_images(folder: Path, shapes: list[tuple[int, int]], seed: int = 0, start: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, (h, w) in enumerate(shapes, start):
        path = folder / f"img{k:02d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(path)
        out.append(path)
    return out


def subject(net: nn.Module, image_size: int, channels_in: int = 3, model_key: str = "0" * 64) -> Subject:
    recipe = Recipe(tensors=[TensorJob("conv1"), TensorJob("conv2")], first_layer=None, image_size=image_size,
                    photo_size=image_size)
    return Subject("tiny", net, {"weights_sha256": model_key, "input_channels": channels_in}, recipe)


def run(tmp: Path, net: nn.Module, folder: Path, image_size: int, channels_in: int = 3, model_key: str = "0" * 64,
        **settings) -> dict:
    ws = Workspace(cache_dir=tmp / "cache", root=tmp / "cache" / "analysis", n_jobs=1, featureviz={}, progress=True)
    out = examples_stage.examples(subject(net, image_size, channels_in, model_key), ws,
                                  image_sets.open_set(str(folder)), settings)
    return {"summary": out, "index": json.loads((ws.root / out["file"]).read_text()), "root": ws.root}


def layer_record(result: dict, layer: str) -> dict:
    return json.loads((result["root"] / result["index"]["layers"][layer]["file"]).read_text())


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def window_values(net: nn.Module, img: np.ndarray, rf: int, stride: int, channel: int) -> np.ndarray:
    """Brute force: conv2 of every rf x rf window of img, run alone (one forward per window)."""
    h, w = img.shape[:2]
    ny, nx = (h - rf) // stride + 1, (w - rf) // stride + 1
    out = np.empty((ny, nx))
    with torch.no_grad():
        for y in range(ny):
            wins = np.stack([img[y * stride:y * stride + rf, x * stride:x * stride + rf] for x in range(nx)])
            out[y] = net(torch.from_numpy(wins).permute(0, 3, 1, 2))[:, channel, 0, 0].numpy()
    return out


def test_receptive_fields_are_measured_with_padding_and_stride():
    """conv1 (k3, s2, pad 1) centres output f on input 2f; conv2 (k3, pad 1) adds one conv1 cell either side."""
    g = torch.Generator().manual_seed(1)
    net = nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, 4, 3, stride=2, padding=1), relu=nn.ReLU(),
                                    conv2=nn.Conv2d(4, 4, 3, padding=1)))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    rf = receptive_field(net, "conv2", size=32)
    assert (rf.size, rf.stride, rf.offset) == (7, (2.0, 2.0), (0.0, 0.0))
    assert receptive_field(net, "conv1", size=32).size == 3
    # A field larger than the probe is cut off by its border: it is measured again on longer images (20 3x3 convs:
    # 41 px on a 32-px probe), its step and centre not from the cut-off middle (a biased middle would put every box
    # off by pixels, the measured step by half a field).
    from analysis.example_pass import receptive_fields

    deep = nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(20)])
    with torch.no_grad():
        for p in deep.parameters():
            p.copy_(torch.randn(p.shape, generator=g).abs() * 0.3)  # positive: every path alive
    fields = receptive_fields(deep, ["3", "19"], 32, channels_in=2)
    assert (fields["3"][0].size, fields["3"][0].stride, fields["3"][0].offset) == (9, (1.0, 1.0), (0.0, 0.0))
    assert (fields["19"][0].size, fields["19"][0].stride, fields["19"][0].offset) == (41, (1.0, 1.0), (0.0, 0.0))
    assert resize_photo(np.zeros((20, 37, 3), np.float32), 12).shape == (12, 22, 3)


@pytest.mark.parametrize("stride,rf", [(1, 5), (2, 7)])
def test_examples_are_the_brute_force_top_windows(tmp_path, stride, rf):
    net = no_pad_net(stride)
    shapes = [(20, 26), (24, 20), (20, 20), (31, 20), (20, 33)]  # shorter side 20 = the model's size: one scale
    paths = write_images(tmp_path / "imgs", shapes)
    result = run(tmp_path, net, tmp_path / "imgs", 20, top=4, per_image=1)
    record = layer_record(result, "conv2")
    assert record["receptive_field"]["size"] == rf
    raw = (result["root"] / result["index"]["layers"]["conv2"]["file"]).read_bytes()
    assert raw == jsonio.dumps(json.loads(raw)).encode()  # the project's one JSON rule, written fast
    ids = [i["id"] for i in record["images"]]
    for channel in range(4):
        best = []
        for path in paths:
            vals = window_values(net, read(path), rf, stride, channel)
            y, x = np.unravel_index(np.argmax(vals), vals.shape)
            best.append((-vals[y, x], path.name, int(y), int(x)))
        expected = sorted(best)[:4]
        got = record["examples"][channel]
        assert [ids[e["image"]] for e in got] == [name for _, name, _, _ in expected]
        np.testing.assert_allclose([e["activation"] for e in got], [-v for v, *_ in expected], rtol=1e-4, atol=1e-5)
        for e, (_, _, y, x) in zip(got, expected):
            assert e["position"] == [y, x]
            assert e["rf"] == pytest.approx([x * stride, y * stride, rf, rf])  # the window itself, source pixels
            assert e["rank"] == got.index(e) and e["scale"] == 20


def test_several_scales_are_searched(tmp_path):
    """A 40x48 image looked at by a 16-px model: shorter sides 16, 24 and 32; each example is the best position
    over all three, and its box is that position's window mapped back to the source image."""
    net = no_pad_net()
    (path,) = write_images(tmp_path / "imgs", [(40, 48)], seed=5)
    result = run(tmp_path, net, tmp_path / "imgs", 16, top=1, per_image=1)
    record = layer_record(result, "conv2")
    img = read(path)
    for channel in range(4):
        options = []
        for short in (16, 24, 32):
            view = resize_photo(img, short)
            vals = window_values(net, view, 5, 1, channel)
            y, x = np.unravel_index(np.argmax(vals), vals.shape)
            options.append((vals[y, x], short, int(y), int(x), view.shape[:2]))
        value, short, y, x, (hs, ws) = max(options)
        (e,) = record["examples"][channel]
        assert e["activation"] == pytest.approx(value, rel=1e-4, abs=1e-5)
        assert e["scale"] == short and e["position"] == [y, x]
        assert e["rf"] == pytest.approx([x * 48 / ws, y * 40 / hs, 5 * 48 / ws, 5 * 40 / hs], abs=0.01)


def overlap(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / min(a[2] * a[3], b[2] * b[3])


def test_examples_of_one_image_are_spread_apart(tmp_path):
    net = no_pad_net()
    write_images(tmp_path / "imgs", [(20, 40), (30, 20)], seed=2)
    record = layer_record(run(tmp_path, net, tmp_path / "imgs", 20, top=6, per_image=3), "conv2")
    for row in record["examples"]:
        assert len(row) == 6
        acts = [e["activation"] for e in row]
        assert acts == sorted(acts, reverse=True)
        for k, a in enumerate(row):
            same = [b for b in row[:k] if b["image"] == a["image"]]
            assert len(same) < 3
            assert all(overlap(a["rf"], b["rf"]) <= 0.25 + 1e-6 for b in same)


def comparable(result: dict) -> dict:
    """Every layer's examples by image id (positions in the set change as a folder grows)."""
    out = {}
    for layer in result["index"]["layers"]:
        rec = layer_record(result, layer)
        out[layer] = [[(rec["images"][e["image"]]["id"], e["activation"], e["position"], e["scale"])
                       for e in row] for row in rec["examples"]]
    return out


def test_a_larger_folder_or_budget_processes_only_new_images(tmp_path, capsys):
    net = no_pad_net()
    folder = tmp_path / "imgs"
    write_images(folder, [(20, 24)] * 5, seed=7)
    first = run(tmp_path / "a", net, folder, 20, count=3)
    assert first["index"]["dataset"]["seen"] == 3 and first["summary"]["complete"]
    assert "from 3 new image(s)" in capsys.readouterr().out
    second = run(tmp_path / "a", net, folder, 20)  # the count lifted: the other two only
    assert "from 2 new image(s)" in capsys.readouterr().out
    write_images(folder, [(22, 20)] * 2, seed=8, start=5)  # the folder grows
    third = run(tmp_path / "a", net, folder, 20)
    assert "from 2 new image(s)" in capsys.readouterr().out and third["index"]["dataset"]["seen"] == 7
    fresh = run(tmp_path / "b", net, folder, 20)
    assert comparable(third) == comparable(fresh)
    assert second["index"]["dataset"]["seen"] == 5
    capsys.readouterr()
    run(tmp_path / "a", net, folder, 20)  # nothing new: nothing processed
    assert "new image" not in capsys.readouterr().out


def test_going_back_to_an_earlier_image_size_reuses_its_pass(tmp_path, capsys):
    """A bring-your-own model's key covers its image size (analysis.loading), and each model key keeps its own running
    state: 20 -> 24 -> 20 px runs the pass twice, not three times (EfficientNet-Lite1 at 240 -> 256 -> 240 px); only
    the KEPT_VARIANTS keys used most recently keep theirs."""
    from analysis.core import spec

    def key(image_size: int) -> str:  # the model key as analysis.loading makes it for a brought model
        return jsonio.sha256_text(f"weights|code|{{}}|{image_size}")

    net = no_pad_net()
    folder = tmp_path / "imgs"
    write_images(folder, [(30, 32)] * 3, seed=5)
    first = run(tmp_path, net, folder, 20, model_key=key(20))
    assert "from 3 new image(s)" in capsys.readouterr().out
    run(tmp_path, net, folder, 24, model_key=key(24))
    assert "from 3 new image(s)" in capsys.readouterr().out
    back = run(tmp_path, net, folder, 20, model_key=key(20))
    assert "new image" not in capsys.readouterr().out  # the 20 px pass, found again
    assert comparable(back) == comparable(first)
    states = tmp_path / "cache" / "examples" / "tiny"
    assert len(list(states.iterdir())) == 2
    for size in (26, 28, 30):
        run(tmp_path, net, folder, size, model_key=key(size))
    kept = sorted(p.name for p in states.iterdir())
    assert len(kept) == spec.KEPT_VARIANTS and spec.variant_name(key(30)) in kept
    capsys.readouterr()
    run(tmp_path, net, folder, 20, model_key=key(20))  # pruned: the oldest key's pass runs again
    assert "from 3 new image(s)" in capsys.readouterr().out


def test_a_time_budget_stops_and_the_next_run_resumes(tmp_path, monkeypatch, capsys):
    net = no_pad_net()
    folder = tmp_path / "imgs"
    write_images(folder, [(20, 21)] * 7, seed=9)
    monkeypatch.setattr(examples_stage, "BATCH", 2)  # a chunk of two images between time checks
    runs = []
    while True:
        runs.append(run(tmp_path / "a", net, folder, 20, seconds=1e-9))
        if runs[-1]["summary"]["complete"]:
            break
        assert len(runs) < 10
    assert [r["index"]["dataset"]["seen"] for r in runs] == [2, 4, 6, 7]
    out = capsys.readouterr().out
    assert out.count("the next build continues") == 3
    assert comparable(runs[-1]) == comparable(run(tmp_path / "b", net, folder, 20))


def test_a_changed_image_starts_the_pass_over(tmp_path, capsys):
    net = no_pad_net()
    folder = tmp_path / "imgs"
    paths = write_images(folder, [(20, 20)] * 3, seed=1)
    run(tmp_path, net, folder, 20)
    write_images(folder, [(20, 20)], seed=99)  # img00.png gets other pixels
    assert paths[0].is_file()
    again = run(tmp_path, net, folder, 20)
    out = capsys.readouterr().out
    assert "start over: img00.png changed" in out and "from 3 new image(s)" in out
    assert comparable(again) == comparable(run(tmp_path / "fresh", net, folder, 20))


def test_gray_models_get_gray_pictures(tmp_path):
    net = no_pad_net(channels_in=1)
    write_images(tmp_path / "imgs", [(20, 30), (24, 20)])
    result = run(tmp_path, net, tmp_path / "imgs", 20, channels_in=1)
    record = layer_record(result, "conv1")
    assert record["gray"] and result["index"]["dataset"]["gray"]
    for pic in record["pictures"]:
        assert Image.open(result["root"] / pic["file"]).mode == "L"


def test_digits_are_packed_gray_into_a_sheet(tmp_path):
    net = no_pad_net()
    ws = Workspace(cache_dir=tmp_path / "cache", root=tmp_path / "cache" / "analysis", n_jobs=1, featureviz={},
                   progress=False)
    digits = image_sets.resolve("mnist")
    out = examples_stage.examples(subject(net, 28), ws, digits, {"count": 60})
    index = json.loads((ws.root / out["file"]).read_text())
    assert index["dataset"] == {"kind": "mnist", "name": "mnist", "images": 5000, "seen": 60, "complete": True,
                                "pictures": "sources", "gray": True}
    record = json.loads((ws.root / index["layers"]["conv2"]["file"]).read_text())
    (sheet,) = record["pictures"]
    assert Image.open(ws.root / sheet["file"]).mode == "L" and sheet["file"].endswith(".png")
    labels = {record["images"][e["image"]]["label"].split("digit ")[1][0] for row in record["examples"] for e in row}
    assert len(labels) >= 5  # the first 60 digits hold every class (the file is sorted by class)
    e = record["examples"][0][0]
    assert e["box"] == [0, 0, 28, 28] and e["at"][2] == 28  # a whole digit, at its own size


def test_photos_are_every_bundled_photo_read_as_files():
    photos = image_sets.resolve("photos")
    ids = [it.id for it in photos.items]
    assert {"skimage/astronaut.png", "skimage/coffee.png", "skimage/retina.jpg", "sklearn/china.jpg",
            "sklearn/flower.jpg", "matplotlib/grace_hopper.jpg"} <= set(ids)
    assert not any(name in i for i in ids for name in image_sets.NOT_PHOTOS)
    assert sum("lfw_subset" in i for i in ids) == 200 and len(ids) >= 222
    for it in photos.items:
        assert Path(it.path).is_file()  # a file in the installed package, never a download


def test_bad_folders_are_one_clear_error(tmp_path):
    with pytest.raises(image_sets.DatasetError, match="not found"):
        image_sets.scan_folder(tmp_path / "nope")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(image_sets.DatasetError, match="holds no JPEG or PNG"):
        image_sets.scan_folder(tmp_path / "empty")
    write_images(tmp_path / "mixed" / "a", [(8, 8)])
    (tmp_path / "mixed" / "a" / "notes.txt").write_text("hello")
    with pytest.raises(image_sets.DatasetError, match=r"a/notes\.txt is not a JPEG or PNG"):
        image_sets.scan_folder(tmp_path / "mixed")
    (tmp_path / "mixed" / "a" / "notes.txt").unlink()
    (tmp_path / "mixed" / ".DS_Store").write_bytes(b"\0")  # hidden files are skipped
    assert image_sets.scan_folder(tmp_path / "mixed") == ["a/img00.png"]
    (tmp_path / "mixed" / "broken.jpg").write_bytes(b"not a jpeg at all")
    from analysis.core.errors import AnalysisError

    with pytest.raises(AnalysisError, match=r"cannot read image .*broken\.jpg"):
        run(tmp_path, no_pad_net(), tmp_path / "mixed", 8)


# ------------------------------------------------------------------------------------------- through the build


def tiny_world(tmp_path: Path, dataset: str) -> tuple[Path, Path]:
    """A build root whose tiny bring-your-own article names `dataset`; returns (root, its index.md)."""
    from hardening_util import TINY_ANALYSIS, make_root

    root = make_root(tmp_path / "root", ["tiny"], TINY_ANALYSIS, tiny=("tiny",))
    index = root / "content" / "tiny" / "index.md"
    text = index.read_text(encoding="utf-8")
    index.write_text(text.replace("image_size: 16}", f"image_size: 16, dataset: {dataset}}}"), encoding="utf-8")
    return root, index


def one_error_line(proc) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize("case", ["missing", "empty", "text file", "a file"])
def test_a_bad_folder_in_front_matter_is_one_line_at_its_field(tmp_path, case):
    from hardening_util import run_build

    root, index = tiny_world(tmp_path, "imgs")
    folder = root / "content" / "tiny" / "imgs"
    if case == "empty":
        (folder / "sub").mkdir(parents=True)
    elif case == "text file":
        write_images(folder, [(16, 16)])
        (folder / "README.txt").write_text("about these images")
    elif case == "a file":
        folder.write_text("not a folder")
    line = one_error_line(run_build(root, tmp_path / "site", tmp_path / "cache"))
    assert line.startswith(f"error: {index}:7: front matter model 'tinynet' dataset: ")
    assert {"missing": "not found", "empty": "holds no JPEG or PNG images", "a file": "is not a folder",
            "text file": "README.txt is not a JPEG or PNG image"}[case] in line
    assert str(folder) in line


@pytest.mark.slow
def test_an_unreadable_image_and_a_bad_site_dataset_are_one_line(tmp_path):
    from hardening_util import run_build

    root, index = tiny_world(tmp_path, "imgs")
    folder = root / "content" / "tiny" / "imgs"
    write_images(folder, [(16, 16)])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    line = one_error_line(run_build(root, tmp_path / "site", tmp_path / "cache"))
    assert line.startswith(f"error: {index}:7: front matter model 'tinynet': cannot read image {folder}/broken.jpg")
    site = root / "site.yml"
    site.write_text(site.read_text().replace("analysis:\n", "analysis:\n  dataset: no/such/folder\n"))
    line = one_error_line(run_build(root, tmp_path / "site", tmp_path / "cache"))
    assert line == f"error: {site}:{site.read_text().splitlines().index('  dataset: no/such/folder') + 1}: " \
                   f"analysis.dataset: dataset folder {root / 'no/such/folder'} not found"


@pytest.mark.slow
def test_a_stopped_pass_leaves_the_analysis_stale_until_it_completes(tmp_path, monkeypatch, capsys):
    """Through the pipeline: a time budget stops the pass; the manifest is then not fresh and the model is not
    reused without loading, so the next build resumes; once complete the manifest is fresh again."""
    from hardening_util import write_tiny_article

    from analysis.core.fingerprint import manifest_is_fresh
    from analysis.pipeline import AnalysisConfig, ModelSpec
    from analysis.pipeline import run as run_pipeline

    article = write_tiny_article(tmp_path / "tiny")
    write_images(tmp_path / "imgs", [(16, 18)] * 5, seed=4)
    monkeypatch.setattr(examples_stage, "BATCH", 2)
    spec = ModelSpec(name="tinynet", factory="tinynet:make", weights=str(article / "tiny.pt"),
                     search_path=str(article), image_size=16, dataset=str(tmp_path / "imgs"))
    cfg = AnalysisConfig(models=[spec], cache_dir=tmp_path / "cache", n_jobs=1, featureviz={"size": 16, "steps": 2},
                         fingerprint="fp", examples={"seconds": 1e-9})
    for seen in (2, 4):
        path = run_pipeline(cfg)
        manifest = json.loads(path.read_text())
        assert manifest["models"]["tinynet"]["examples"]["images"] == seen
        assert "unchanged, reused" not in capsys.readouterr().out
        assert not manifest_is_fresh(path, "fp") and manifest["fingerprint"] == "resume-examples:fp"
    path = run_pipeline(cfg)
    manifest = json.loads(path.read_text())
    folder = manifest["models"]["tinynet"]["folder"]
    assert manifest["models"]["tinynet"]["examples"] == {"file": f"{folder}/examples/index.json", "complete": True,
                                                         "images": 5, "total": 5}
    assert manifest_is_fresh(path, "fp")
    run_pipeline(cfg)
    assert "tinynet: unchanged, reused without loading it" in capsys.readouterr().out


def test_a_large_folder_ships_crops_and_resumes_with_them(tmp_path, monkeypatch):
    """Above SOURCES_LIMIT images the site gets per-channel strips of 64-px crops, not whole pictures; the crops
    are kept with the running state, so a resumed pass writes the same strips as an uninterrupted one."""
    monkeypatch.setattr(image_sets, "SOURCES_LIMIT", 3)
    net = no_pad_net()
    folder = tmp_path / "imgs"
    write_images(folder, [(20, 22)] * 6, seed=12)
    monkeypatch.setattr(examples_stage, "BATCH", 2)
    while not (resumed := run(tmp_path / "a", net, folder, 20, seconds=1e-9, top=3))["summary"]["complete"]:
        pass
    fresh = run(tmp_path / "b", net, folder, 20, top=3)
    assert resumed["index"]["dataset"]["pictures"] == "crops" and comparable(resumed) == comparable(fresh)
    record = layer_record(resumed, "conv2")
    for channel, row in enumerate(record["examples"]):
        (pic,) = {e["picture"] for e in row}
        strip = record["pictures"][pic]
        assert strip["file"].endswith(f"examples/conv2/c{channel}.jpg") and (strip["width"], strip["height"]) == (192, 64)
        a = np.asarray(Image.open(resumed["root"] / strip["file"]))
        b = np.asarray(Image.open(fresh["root"] / layer_record(fresh, "conv2")["pictures"][pic]["file"]))
        assert np.array_equal(a, b)
        for e in row:
            assert e["at"] == [e["rank"] * 64, 0, 64, 64]
            # the strip cell is the context square of the source image around the field (JPEG: close, not equal)
            src = read(folder / record["images"][e["image"]]["id"])
            x, y, side = e["box"][0], e["box"][1], e["box"][2]
            want = np.full((int(side), int(side), 3), 0.5, np.float32)
            ys, xs = slice(max(0, int(y)), min(20, int(y + side))), slice(max(0, int(x)), min(22, int(x + side)))
            want[ys.start - int(y):ys.stop - int(y), xs.start - int(x):xs.stop - int(x)] = src[ys, xs]
            cell = a[:, e["rank"] * 64:(e["rank"] + 1) * 64] / 255.0
            small = np.asarray(Image.fromarray((cell * 255).astype(np.uint8)).resize((int(side), int(side)),
                                                                                      Image.Resampling.BOX)) / 255.0
            inside = (slice(ys.start - int(y), ys.stop - int(y)), slice(xs.start - int(x), xs.stop - int(x)))
            corr = np.corrcoef(small[inside].ravel(), want[inside].ravel())[0, 1]
            assert corr > 0.6, corr  # noise through bilinear 64-px cells and JPEG: correlated, not equal
            shifted = np.corrcoef(np.roll(small, 2, axis=1)[inside].ravel(), want[inside].ravel())[0, 1]
            assert shifted < corr - 0.3, (corr, shifted)  # and not any crop: two pixels off is far worse
    assert not ((resumed["root"] / resumed["summary"]["file"]).parent / "pics").exists()


def test_the_inputs_of_a_kernel_fed_by_an_unanalysed_conv_get_examples():
    """A gray net's first conv (one input channel) is not analysed alone, but its neurons are the second conv's
    inputs on the model page: the layer that feeds a kernel (from the graph) is analysed too."""
    from analysis.examples_stage import analysed_layers, input_layer
    from analysis.recipes import auto_recipe

    net = nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 4, 5, padding=2), relu1=nn.ReLU(),
                                    conv2=nn.Conv2d(4, 6, 3, padding=1), relu2=nn.ReLU(),
                                    conv3=nn.Conv2d(6, 6, 3, padding=1)))
    recipe = auto_recipe(net, 28)
    assert [t.id for t in recipe.tensors] == ["conv2", "conv3"]
    assert analysed_layers(recipe) == ["conv1", "conv2", "conv3"]
    assert [input_layer(recipe, t) for t in recipe.tensors] == ["conv1", "conv2"]


def test_a_merge_keeps_every_crop_with_its_entry():
    """RunningTopK moves slot numbers, not pixels: after many merges (entries dropped, kept, re-ranked), each rank's
    crop is still the one cut for that entry, and the kept top-k is the top-k of everything merged."""
    from analysis import example_pass as xp

    rng = np.random.default_rng(5)
    top, everything, pos = xp.RunningTopK(3, 4, (2, 2, 2)), [[] for _ in range(3)], 0
    for _ in range(12):
        n = int(rng.integers(1, 6))
        vals = rng.normal(size=(3, n))
        vals[rng.random((3, n)) < 0.3] = -np.inf
        meta = np.zeros((3, n, 7), dtype=np.int64)
        meta[..., xp.POS] = pos + np.arange(3 * n).reshape(3, n)
        pos += 3 * n
        for ch in range(3):
            everything[ch] += [(v, int(p)) for v, p in zip(vals[ch], meta[ch, :, xp.POS]) if np.isfinite(v)]

        def cut(ch, col, meta=meta):  # a crop that names its entry
            p = int(meta[ch, col, xp.POS])
            return np.full((2, 2, 2), [p % 256, p // 256], dtype=np.uint8)

        top.merge(vals, meta, cut)
    crops = top.ranked_crops()
    for ch in range(3):
        want = sorted(everything[ch], key=lambda e: -e[0])[:4]
        assert [p for _, p in want] == [int(p) for p in top.meta[ch, :len(want), xp.POS]]
        for r, (_, p) in enumerate(want):
            assert crops[ch, r, 0, 0].tolist() == [p % 256, p // 256]


def test_a_large_context_is_cut_from_a_shrunk_view():
    """Crops of a large context are cut from the view box-filtered f times (PIL's reduce), which the crops pass
    converts once per view: the same picture as cutting the full view, within a level or two."""
    from analysis import example_pass as xp

    yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
    view = np.stack([np.sin(xx / 23) * 0.4 + 0.5, np.cos(yy / 31) * 0.4 + 0.5, (xx + yy) / 700], axis=-1)
    for x0, y0, side in [(10.3, 20.7, 300.0), (-30.0, 150.0, 260.0), (250.5, 5.0, 520.0)]:
        f = max(1, int(side // (2 * 64)))
        full = xp.cut(view, x0, y0, side, 64).astype(int)
        small = xp.cut(examples_stage._shrink(xp.to_u8(view), f), x0 / f, y0 / f, side / f, 64).astype(int)
        assert f > 1
        assert np.abs(full - small).mean() < 2.0 and np.abs(full - small).max() < 40, (x0, y0, side)


@pytest.mark.parametrize("stride_at", [3, 9])
def test_a_field_cut_off_by_the_probe_is_what_a_larger_probe_measures(stride_at):
    """Deep fields are measured again on longer images: on a 16-px probe, size, step and centre equal a 96-px
    probe's, where nothing is cut off, also for the first layer of a new step (its centre was a guess, half a step
    off) and with a padding-free layer among padded ones."""
    from analysis.example_pass import receptive_fields

    g = torch.Generator().manual_seed(7)
    layers = [nn.Conv2d(2, 2, 3, padding=0 if k == 1 else 1, stride=2 if k in (stride_at, 11) else 1)
              for k in range(13)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g).abs() * 0.3)
    hooks = [str(k) for k in range(13)]
    small, large = receptive_fields(net, hooks, 16, channels_in=2), receptive_fields(net, hooks, 96, channels_in=2)
    assert max(f.size for f, _ in small.values()) > 16  # some fields were cut off
    for k in hooks:
        assert small[k][0] == large[k][0], (k, small[k][0], large[k][0])


def test_a_damaged_example_file_is_written_again(tmp_path):
    """A layer record or picture edited or truncated in the cache is written again from the pass's state (the
    freshness check saw the mismatch and re-ran the analysis: the examples stage must not keep the damage)."""
    net = no_pad_net()
    folder = tmp_path / "imgs"
    write_images(folder, [(20, 24)] * 3, seed=5)
    first = run(tmp_path / "a", net, folder, 20)
    record = first["root"] / first["index"]["layers"]["conv2"]["file"]
    picture = first["root"] / layer_record(first, "conv2")["pictures"][0]["file"]
    good = {p: p.read_bytes() for p in (record, picture)}
    record.write_bytes(good[record][:-10])
    picture.write_bytes(good[picture][: len(good[picture]) // 2])
    run(tmp_path / "a", net, folder, 20)
    assert {p: p.read_bytes() for p in good} == good
