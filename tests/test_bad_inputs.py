"""Bad input must fail the build with ONE clear stderr line naming the file (and line), and leave site/ alone.

Every case copies a world (a build root whose site/ holds a good previous build, plus its cache), breaks one
thing, and runs `python build.py` in a subprocess. The builds of all selected cases run concurrently (they are
independent subprocesses) in a module fixture; each parametrized test then checks its own outcome:
exit code != 0, stderr is one line `error: <file>[:<line>]: ...`, no traceback, previous site/ byte-identical.
Render errors use the sample article (no analysis); model errors a tiny bring-your-own article (2 convs,
2-step feature visualizations) so a failing analysis costs a torch import, not a training run.

Cases tried (keep this count current; bench/README.md "Hardening cases" repeats it): CASES has 133 rows (2 from issue 22: image_size against the network), 46 from
round one and 83 from round two (issue 10: data loss 30, code execution and injection 12, crashes, hangs and unclear
messages 41, neighbours included). Round two also adds 17 checks below the table (inputs that must now simply work:
BOM, old placeholder text, 5 damaged render/bib cache entries; torch-free: 5 damaged manifests, disk full, factory
allow-list, fingerprint by content; end to end: freshness by content, shell command never run), 22 in
test_security.py (21 hostile Markdown/math/BibTeX constructs in one build + a planted Jinja bytecode file) and 2 in
test_faults.py (concurrent builds, a live build's temp folder): 124 new cases in round two.
Round three (issue 19) adds 15 rows (144 in all: names sharing a folder x2, allow-listed attribute chains x3, hangs
in C or Python x4, a huge kwargs value, Jinja constant folding, quadratic Markdown, bidi text x2, a heading taking a
page id under --strict, a 64 GB sparse file), 3 checks below the table (no shell command through an allowed module,
error lines cut short, hangs end after their limit) and 22 tests in test_round_three.py: 40 new cases.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from hardening_util import (REPO, TINY_ANALYSIS, build_cmd, build_env, check_ok, make_root, run_build, tree_diff,
                            tree_digest, tree_files)

pytestmark = pytest.mark.slow  # builds many sites or kills builds: the full suite's tier (conftest.py)


@dataclass
class Ctx:
    """One case's world: a copy of a good build (root/, site/, cache/) in `dir`."""

    dir: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    site_dir: Path | None = None  # overrides dir/site for the failing build
    cache_dir: Path | None = None  # overrides dir/cache for the failing build

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def sample(self) -> Path:
        return self.root / "content" / "sample" / "index.md"

    @property
    def tiny(self) -> Path:
        return self.root / "content" / "tiny"


def edit(path: Path, old: str, new: str) -> int:
    """Replace the one occurrence of `old` in `path`; return the 1-based line where `new` starts."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not exactly once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def append(path: Path, text: str) -> int:
    """Append a block of lines; return the file line of its first line."""
    before = path.read_text(encoding="utf-8")
    if not before.endswith("\n"):
        before += "\n"
    path.write_text(before + "\n" + text, encoding="utf-8")
    return before.count("\n") + 2


def at(path: Path, line: int | None = None) -> str:
    """Regex for `path:line: ` (any line when None, no line at all when 0)."""
    if line == 0:
        return re.escape(f"{path}: ")
    return re.escape(str(path)) + (f":{line}: " if line else r"(:\d+)?: ")


def copy_templates(ctx: Ctx) -> Path:
    (ctx.root / "templates").unlink()
    shutil.copytree(REPO / "templates", ctx.root / "templates")
    return ctx.root / "templates"


def save(obj, path: Path) -> None:
    import torch

    torch.save(obj, path)


def tiny_state() -> dict:
    from hardening_util import tiny_state_dict

    return tiny_state_dict()


# --------------------------------------------------------------------------- the cases
# Each mutation breaks one thing in its world and returns the regex the error line must match after "error: ".

def fm_malformed_yaml(c: Ctx) -> str:
    line = edit(c.sample, "title: A Sample Article", "title: [A Sample Article")
    return at(c.sample, line) + "malformed YAML front matter"  # the unclosed bracket's line, not the next one


def fm_missing_field(c: Ctx) -> str:
    edit(c.sample, "description: Every element", "summary: Every element")
    return at(c.sample) + ".*'description' is required"


def fm_missing_authors(c: Ctx) -> str:
    edit(c.sample, "authors:\n", "writers:\n")
    return at(c.sample) + ".*'authors'"


def fm_invalid_date(c: Ctx) -> str:
    line = edit(c.sample, "date: 2025-01-15", "date: 2025-13-45")
    return at(c.sample, line) + ".*date"


def fm_date_not_a_date(c: Ctx) -> str:
    line = edit(c.sample, "date: 2025-01-15", "date: last tuesday")
    return at(c.sample, line) + ".*date"


def fm_authors_not_a_list(c: Ctx) -> str:
    line = edit(c.sample, "authors:\n", "authors: 42\nwriters:\n")
    return at(c.sample, line) + ".*authors"


def fm_author_unknown_key(c: Ctx) -> str:
    line = edit(c.sample, "authors:\n", "authors:\n  - {name: X, email: x@example.org}\n")
    return at(c.sample, line) + ".*email"


def fm_raw_html_not_bool(c: Ctx) -> str:
    line = edit(c.sample, "doi: ", "raw_html: please\ndoi: ")
    return at(c.sample, line) + ".*raw_html"


def fm_missing(c: Ctx) -> str:
    text = c.sample.read_text(encoding="utf-8")
    c.sample.write_text(text.split("\n---\n", 1)[1], encoding="utf-8")
    return at(c.sample, 1) + ".*front matter"


def fm_unterminated(c: Ctx) -> str:
    edit(c.sample, "  example-net: {layers: 3}\n---\n", "  example-net: {layers: 3}\n")
    return at(c.sample, 1) + ".*unterminated"


def unknown_citation(c: Ctx) -> str:
    line = append(c.sample, "As shown before [@nobody2099].\n")
    return at(c.sample, line) + ".*nobody2099"


def unknown_figure_kind(c: Ctx) -> str:
    line = append(c.sample, "::: figure id=extra kind=no_such_kind\nCaption.\n:::\n")
    return at(c.sample, line) + ".*no_such_kind"


def unknown_fig_reference(c: Ctx) -> str:
    line = append(c.sample, "As @fig:nowhere shows.\n")
    return at(c.sample, line) + ".*nowhere"


def figure_without_id(c: Ctx) -> str:
    line = append(c.sample, "::: figure kind=sample_tiles\nCaption.\n:::\n")
    return at(c.sample, line) + ".*id"


def unknown_directive(c: Ctx) -> str:
    line = append(c.sample, "::: frobnicate\nText.\n:::\n")
    return at(c.sample, line) + ".*frobnicate"


def unclosed_directive(c: Ctx) -> str:
    line = append(c.sample, "::: aside\nA margin note that never ends.\n")
    return at(c.sample, line)


def undefined_data(c: Ctx) -> str:
    line = append(c.sample, "The answer is {{ data.nope.value }}.\n")
    return at(c.sample, line) + ".*nope"


def template_sandbox_escape(c: Ctx) -> str:
    # The body template is sandboxed: dunder attributes are off limits, so this is an undefined name.
    line = append(c.sample, "{{ data.__class__.__mro__[1].__subclasses__() }}\n")
    return at(c.sample, line)


def body_template_syntax(c: Ctx) -> str:
    line = append(c.sample, "Broken {{ data.sample | }} here.\n")
    return at(c.sample, line)


def bib_malformed(c: Ctx) -> str:
    bib = c.sample.parent / "refs.bib"
    line = append(bib, "@article{broken,\n  title = {Unclosed,\n  year = 2020\n")
    return at(bib) + ".*(malformed|bibliography)"


def bib_missing(c: Ctx) -> str:
    edit(c.sample, "bibliography: refs.bib", "bibliography: nope.bib")
    return at(c.sample.parent / "nope.bib") + ".*not found"


def markdown_not_utf8(c: Ctx) -> str:
    text = c.sample.read_text(encoding="utf-8")
    line = text[: text.index("## Weights as pictures")].count("\n") + 1
    c.sample.write_bytes(text.replace("## Weights as pictures", "## Weights as pictures \u00e9t\u00e9").encode("latin-1"))
    return at(c.sample, line) + ".*UTF-8"


def template_missing(c: Ctx) -> str:
    folder = copy_templates(c)
    (folder / "article.html").unlink()
    return r".*article\.html"


def template_syntax_error(c: Ctx) -> str:
    folder = copy_templates(c)
    line = append(folder / "article.html", "{% if %}\n")
    return at(folder / "article.html", line)


def site_yml_malformed(c: Ctx) -> str:
    path = c.root / "site.yml"
    path.write_text("title: [Hardening\ndescription: x\n", encoding="utf-8")
    return at(path, 1) + ".*YAML"


def site_yml_missing(c: Ctx) -> str:
    (c.root / "site.yml").unlink()
    return at(c.root / "site.yml", 0) + ".*not found"


def site_yml_articles_not_list(c: Ctx) -> str:
    edit(c.root / "site.yml", "articles:\n- sample\n", "articles: sample\n")
    return at(c.root / "site.yml") + ".*articles"


def site_yml_article_without_folder(c: Ctx) -> str:
    edit(c.root / "site.yml", "articles:\n- sample\n", "articles:\n- sample\n- ghost\n")
    return at(c.root / "content" / "ghost" / "index.md") + ".*ghost"


def site_yml_analysis_not_mapping(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis: 5\n")
    return at(c.root / "site.yml") + ".*analysis"


def site_yml_recipe_for_a_model_not_analysed(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis:\n  models: [efficientnet-lite0]\n  recipes:\n    mobilenet-v2: {layers: [a]}\n")
    line = (c.root / "site.yml").read_text(encoding="utf-8").splitlines().index("  recipes:") + 1
    return at(c.root / "site.yml", line) + ".*analysis.recipes.*'mobilenet-v2'.*not a pretrained model of analysis.models"


def site_yml_recipe_unknown_field(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis:\n  models: [efficientnet-lite0]\n  recipes:\n    efficientnet-lite0: {layer: [a]}\n")
    line = (c.root / "site.yml").read_text(encoding="utf-8").splitlines().index("  recipes:") + 1
    return at(c.root / "site.yml", line) + r".*analysis.recipes.efficientnet-lite0.*unknown field\(s\) layer"


def site_yml_recipe_names_a_missing_layer(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis:\n  models: [efficientnet-lite0]\n  recipes:\n    efficientnet-lite0: {layers: [nope]}\n")
    line = (c.root / "site.yml").read_text(encoding="utf-8").splitlines().index("  recipes:") + 1
    return at(c.root / "site.yml", line) + r".*analysis.recipes.efficientnet-lite0.*layer 'nope' is neither a block nor"


def output_under_a_file(c: Ctx) -> str:
    blocker = c.dir / "blocker.txt"
    blocker.write_text("a regular file, so nothing can be created below it (chmod does not stop root)\n")
    c.site_dir = blocker / "site"
    return re.escape(str(blocker)) + ".*output folder"


def cache_under_a_file(c: Ctx) -> str:
    # The model world: its analysis must write into <cache>/analysis/, which cannot exist below a file.
    blocker = c.dir / "blocker.txt"
    blocker.write_text("not a folder\n")
    c.cache_dir = blocker / "cache"
    return re.escape(str(blocker))


# -- bring-your-own models (the tiny world)

def weights_missing(c: Ctx) -> str:
    (c.tiny / "tiny.pt").unlink()
    return at(c.tiny / "index.md", 7) + f".*{re.escape(str(c.tiny / 'tiny.pt'))} not found"


def weights_empty(c: Ctx) -> str:
    (c.tiny / "tiny.pt").write_bytes(b"")
    return at(c.tiny / "index.md", 7) + ".*empty"


def weights_truncated(c: Ctx) -> str:
    path = c.tiny / "tiny.pt"
    path.write_bytes(path.read_bytes()[:300])
    return f".*{re.escape(str(path))}.*(truncated|corrupt)"


def weights_wrong_keys(c: Ctx) -> str:
    state = tiny_state()
    state["conv9.weight"] = state.pop("conv2.weight")
    save(state, c.tiny / "tiny.pt")
    return f".*{re.escape(str(c.tiny / 'tiny.pt'))}.*conv2.weight.*conv9.weight"


def weights_wrong_shapes(c: Ctx) -> str:
    import torch

    state = tiny_state()
    state["conv2.weight"] = torch.zeros(4, 4, 5, 5)
    save(state, c.tiny / "tiny.pt")
    return f".*{re.escape(str(c.tiny / 'tiny.pt'))}.*shape.*conv2.weight"


def weights_nan(c: Ctx) -> str:
    state = tiny_state()
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    save(state, c.tiny / "tiny.pt")
    return f".*{re.escape(str(c.tiny / 'tiny.pt'))}.*conv1.weight.*NaN"


class _RunsCode:
    """Pickles to `os.system("touch <marker>")`: loading it unsafely would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def weights_pickle_runs_code(c: Ctx) -> str:
    state = tiny_state()
    state["conv1.weight"] = _RunsCode(c.dir / "PWNED")  # a real checkpoint with one poisoned entry
    save(state, c.tiny / "tiny.pt")
    return f".*{re.escape(str(c.tiny / 'tiny.pt'))}.*(refus|code)"


def googlenet_wrong_hash(c: Ctx) -> str:
    bad = c.dir / "googlenet-1378be20.pth"
    shutil.copy(c.tiny / "tiny.pt", bad)  # a fine checkpoint, just not GoogLeNet's
    edit(c.root / "site.yml", "models: []", "models: [inceptionv1]")
    c.env["VW_GOOGLENET_WEIGHTS"] = str(bad)
    return f".*{re.escape(str(bad))}.*sha256"


def factory_malformed(c: Ctx) -> str:
    edit(c.tiny / "index.md", 'factory: "tinynet:make"', 'factory: "tinynet.make"')
    return at(c.tiny / "index.md", 7) + ".*factory"


def factory_no_module(c: Ctx) -> str:
    edit(c.tiny / "index.md", 'factory: "tinynet:make"', 'factory: "no_such_module_xyz:make"')
    return at(c.tiny / "index.md", 7) + ".*no_such_module_xyz"


def factory_module_raises(c: Ctx) -> str:
    line = edit(c.tiny / "tinynet.py", "import torch\n", "import torch\nraise RuntimeError('factory module is broken')\n")
    return at(c.tiny / "index.md", 7) + f".*{re.escape(str(c.tiny / 'tinynet.py'))}:{line + 1}:.*broken"


def factory_syntax_error(c: Ctx) -> str:
    line = edit(c.tiny / "tinynet.py", "def make():", "def make(:")
    return at(c.tiny / "index.md", 7) + f".*{re.escape(str(c.tiny / 'tinynet.py'))}:{line}:.*SyntaxError"


def factory_no_attribute(c: Ctx) -> str:
    edit(c.tiny / "index.md", 'factory: "tinynet:make"', 'factory: "tinynet:nope"')
    return at(c.tiny / "index.md", 7) + ".*no attribute 'nope'"


def factory_raises(c: Ctx) -> str:
    line = edit(c.tiny / "tinynet.py", "    return TinyNet()", "    raise ValueError('no model today')")
    return at(c.tiny / "index.md", 7) + f".*{re.escape(str(c.tiny / 'tinynet.py'))}:{line}:.*no model today"


def model_forward_fails(c: Ctx) -> str:
    line = edit(c.tiny / "tinynet.py", "        x = torch.relu(self.conv1(x))\n",
                "        raise RuntimeError('forward is broken')\n")
    return at(c.tiny / "index.md", 7) + f".*{re.escape(str(c.tiny / 'tinynet.py'))}:{line}:.*forward is broken"


def image_size_too_small(c: Ctx) -> str:
    """conv2 sees the 16x16 image pooled to 2x2 and has no padding: smaller than its 3x3 kernel (issue 22)."""
    edit(c.tiny / "tinynet.py", "self.conv2 = nn.Conv2d(width, width, 3, padding=1)",
         "self.conv2 = nn.Conv2d(width, width, 3, padding=0)")
    edit(c.tiny / "tinynet.py", "x = torch.relu(self.conv2(x))", "x = torch.relu(self.conv2(torch.max_pool2d(x, 8)))")
    return (at(c.tiny / "index.md", 7) + r"front matter model 'tinynet': image_size 16: conv2 gets a 2x2 input, "
            r"smaller than its 3x3 kernel; the network needs larger images$")


def image_size_forward_fails(c: Ctx) -> str:
    """A head that fits one image size only: the forward fails at the declared one, though every conv runs."""
    line = edit(c.tiny / "tinynet.py", "return self.head(x.mean(dim=(2, 3)))", "return self.head(x.flatten(1))")
    return (at(c.tiny / "index.md", 7) + r"front matter model 'tinynet': image_size 16: the model's forward\(\) "
            rf"fails on a 1x3x16x16 input: .*tinynet.py:{line}: RuntimeError: ")  # then torch's own words


# -- recipes in front matter: a typo is reported at the line of the field that holds it


TINY_ENTRY = '  tinynet: {factory: "tinynet:make", weights: tiny.pt, image_size: 16}\n'


def _with_recipe(c: Ctx, recipe: str) -> int:
    """The tiny model's entry in block style with a `recipe:`; returns the file line of the recipe's first field."""
    line = edit(c.tiny / "index.md", TINY_ENTRY, '  tinynet:\n    factory: "tinynet:make"\n    weights: tiny.pt\n'
                '    image_size: 16\n    recipe:\n' + recipe)
    return line + 5


def recipe_unknown_field(c: Ctx) -> str:
    line = _with_recipe(c, "      expansion: [blocks]\n")
    return at(c.tiny / "index.md", line) + r"front matter model 'tinynet' recipe: unknown field\(s\) expansion"


def recipe_layer_name_typo(c: Ctx) -> str:
    """Only the analysis knows the layer names: still one line, at the field, naming the model once."""
    line = _with_recipe(c, "      layers: [conv1]\n      expansions: ['conv9 -> conv2']\n") + 1
    return (at(c.tiny / "index.md", line) + r"front matter model 'tinynet': recipe: expansion source 'conv9' is "
            r"neither a block nor a module of the model \(2 blocks: conv1, conv2\)$")


def recipe_neuron_out_of_range(c: Ctx) -> str:
    line = _with_recipe(c, "      context: [{weights: conv2, neurons: [99]}]\n")
    return at(c.tiny / "index.md", line) + r"front matter model 'tinynet': .*neurons \[99\] out of range"


# -- data loss: --site-dir may only replace a folder an earlier build created (it holds .vw-site)

def site_is_content(c: Ctx) -> str:
    c.site_dir = c.root / "content"
    return at(c.root / "content") + ".*refus.*content/"


def site_is_article_folder(c: Ctx) -> str:
    c.site_dir = c.root / "content" / "sample"
    return at(c.root / "content" / "sample") + ".*refus.*content/"


def site_inside_content(c: Ctx) -> str:
    c.site_dir = c.root / "content" / "out"
    return at(c.root / "content" / "out") + ".*refus.*content/"


def site_is_project(c: Ctx) -> str:
    c.site_dir = c.root
    return at(c.root) + ".*refus.*project"


def site_contains_project(c: Ctx) -> str:
    c.site_dir = c.dir
    return at(c.dir) + ".*refus.*project"


def site_is_templates(c: Ctx) -> str:
    folder = copy_templates(c)  # a real copy: a regression must not delete the repository's templates
    c.site_dir = folder
    return at(folder) + ".*refus.*templates/"


def site_inside_templates(c: Ctx) -> str:
    folder = copy_templates(c)
    c.site_dir = folder / "assets"
    return at(folder / "assets") + ".*refus.*templates/"


def site_is_cache(c: Ctx) -> str:
    c.site_dir = c.dir / "cache"
    return at(c.dir / "cache") + ".*refus.*cache"


def site_inside_cache(c: Ctx) -> str:
    c.site_dir = c.dir / "cache" / "render"
    return at(c.dir / "cache" / "render") + ".*refus.*cache"


def site_contains_cache(c: Ctx) -> str:
    site = c.dir / "out"
    (site / ".vw-site").parent.mkdir()
    (site / ".vw-site").write_text("an earlier build, but the cache now lives inside it\n")
    c.cache_dir = site / "cache"
    shutil.copytree(c.dir / "cache", c.cache_dir)
    c.site_dir = site
    return at(site) + ".*refus.*cache"


def site_symlink_to_content(c: Ctx) -> str:
    link = c.dir / "published"
    link.symlink_to(c.root / "content", target_is_directory=True)
    c.site_dir = link
    return r".*refus.*content/"


def site_foreign_folder(c: Ctx) -> str:
    docs = c.dir / "docs"
    docs.mkdir()
    (docs / "thesis.tex").write_text("years of work\n")
    c.site_dir = docs
    return at(docs) + ".*not built by build.py"


def site_is_a_file(c: Ctx) -> str:
    target = c.dir / "notes.txt"
    target.write_text("keep me\n")
    c.site_dir = target
    return at(target) + ".*not a folder"


def site_without_marker(c: Ctx) -> str:
    (c.dir / "site" / ".vw-site").unlink()  # e.g. a folder someone copied by hand: not ours to delete
    return at(c.dir / "site") + ".*not built by build.py"


def cache_is_content(c: Ctx) -> str:
    c.cache_dir = c.root / "content"
    c.args = ["--clean"]  # --clean deletes <cache>/render: here it would be an article folder named render
    (c.root / "content" / "render").mkdir()
    (c.root / "content" / "render" / "index.md").write_text("an article that happens to be called render\n")
    return at(c.root / "content") + ".*--cache-dir.*content/"


def cache_is_project(c: Ctx) -> str:
    c.cache_dir = c.root
    return at(c.root) + ".*--cache-dir.*project"


def cache_inside_templates(c: Ctx) -> str:
    folder = copy_templates(c)
    c.cache_dir = folder / "cache"
    return at(folder / "cache") + ".*--cache-dir.*templates/"


# -- data loss: user code ending the process, two articles declaring one model name differently

def factory_sys_exit_0(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "    return TinyNet()", "    import sys\n    sys.exit(0)")
    return at(c.tiny / "index.md", 7) + r".*'tinynet:make' called sys.exit\(0\)"


def factory_system_exit_3(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "    return TinyNet()", "    raise SystemExit(3)")
    return at(c.tiny / "index.md", 7) + r".*'tinynet:make' called sys.exit\(3\)"


def factory_module_exits_on_import(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "import torch\n", "import torch\nexit('bye')\n")
    return at(c.tiny / "index.md", 7) + r".*'tinynet:make' called sys.exit\('bye'\) while importing"


def forward_sys_exit(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "        x = torch.relu(self.conv1(x))\n", "        raise SystemExit(0)\n")
    return at(c.tiny / "index.md", 7) + r".*sys.exit\(0\).*tinynet"


def _second_tiny(c: Ctx, old: str, new: str) -> Path:
    other = c.root / "content" / "tiny2"
    shutil.copytree(c.tiny, other)
    edit(other / "index.md", old, new)
    edit(c.root / "site.yml", "- tiny\n", "- tiny\n- tiny2\n")
    return other


def model_name_two_weights(c: Ctx) -> str:
    other = _second_tiny(c, "weights: tiny.pt", "weights: other.pt")
    shutil.copy(c.tiny / "tiny.pt", other / "other.pt")
    return at(other / "index.md", 7) + f".*'tinynet'.*{re.escape(str(c.tiny / 'index.md'))}:7.*{re.escape(str(other / 'index.md'))}:7"


def model_name_two_kwargs(c: Ctx) -> str:
    other = _second_tiny(c, "image_size: 16}", "image_size: 16, kwargs: {width: 4}}")
    return at(other / "index.md", 7) + f".*'tinynet'.*{re.escape(str(c.tiny / 'index.md'))}:7"


def model_name_two_factories(c: Ctx) -> str:
    other = _second_tiny(c, '"tinynet:make"', '"tinynet:TinyNet"')
    return at(other / "index.md", 7) + ".*declared differently"


def model_name_two_factory_files(c: Ctx) -> str:
    # Same text in front matter, but each article's folder has its own tinynet.py: two different models.
    other = _second_tiny(c, "image_size: 16}", "image_size: 16 }")
    edit(other / "tinynet.py", "width: int = 4", "width: int = 5")
    return at(other / "index.md", 7) + ".*declared differently"


# -- code execution: front matter may only name factories from the article's folder or site.yml's allow-list

def factory_os_system(c: Ctx) -> str:
    edit(c.tiny / "index.md", '{factory: "tinynet:make", weights: tiny.pt, image_size: 16}',
         f'{{factory: "os:system", weights: tiny.pt, kwargs: {{command: "touch {c.dir / "PWNED"}"}}}}')
    return at(c.tiny / "index.md", 7) + ".*'os:system'.*not a module in the article's folder"


def factory_builtins_eval(c: Ctx) -> str:
    edit(c.tiny / "index.md", '"tinynet:make"', '"builtins:eval"')
    return at(c.tiny / "index.md", 7) + ".*not a module in the article's folder"


def factory_subprocess_run(c: Ctx) -> str:
    edit(c.tiny / "index.md", '"tinynet:make"', '"subprocess:run"')
    return at(c.tiny / "index.md", 7) + ".*not a module in the article's folder"


def factory_installed_package(c: Ctx) -> str:
    edit(c.tiny / "index.md", '"tinynet:make"', '"torch.nn:Conv2d"')
    return at(c.tiny / "index.md", 7) + ".*'torch.nn:Conv2d'.*factories:"


def factory_shadows_stdlib(c: Ctx) -> str:
    shutil.copy(c.tiny / "tinynet.py", c.tiny / "json.py")  # a json.py in the folder does not make json local
    edit(c.tiny / "index.md", '"tinynet:make"', '"json:make"')
    return at(c.tiny / "index.md", 7) + ".*not a module in the article's folder"


def factory_reexported_module(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "import torch\n", "import os\nimport torch\n")
    edit(c.tiny / "index.md", '"tinynet:make"', '"tinynet:os.system"')
    return at(c.tiny / "index.md", 7) + ".*'os' is a module"


def factory_reexported_callable(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "import torch\n", "from os import system\nimport torch\n")
    edit(c.tiny / "index.md", '"tinynet:make"', '"tinynet:system"')
    return at(c.tiny / "index.md", 7) + ".*defined in module 'posix'"


def factory_returns_not_a_module(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "    return TinyNet()", "    return {'conv1': 1}")
    return at(c.tiny / "index.md", 7) + ".*returned a dict, not a torch.nn.Module"


def factories_not_a_list(c: Ctx) -> str:
    append(c.root / "site.yml", "factories: os\n")
    return at(c.root / "site.yml", 0) + ".*'factories'"


# -- injection: author links must be http(s), mailto or relative

def author_url_javascript(c: Ctx) -> str:
    edit(c.sample, "    url: https://example.org/ada", "    url: javascript:alert(1)")
    return at(c.sample, 6) + r".*authors\[0\].url.*javascript"  # line 6: the authors: key


def affiliation_url_javascript(c: Ctx) -> str:
    edit(c.sample, "    affiliation_url: https://example.org", '    affiliation_url: " JaVa\\tScRiPt:alert(1)"')
    return at(c.sample, 6) + r".*affiliation_url"


def author_url_data(c: Ctx) -> str:
    edit(c.sample, "    url: https://example.org/ada", "    url: data:text/html,<script>alert(1)</script>")
    return at(c.sample) + r".*url.*http"


# -- crashes that used to end in a traceback

def body_reserved_character(c: Ctx) -> str:
    line = append(c.sample, "Text with a forged placeholder \ue0000\ue001 in it.\n")
    return at(c.sample, line) + ".*U\\+E000"


def figure_in_acknowledgements(c: Ctx) -> str:
    line = edit(c.sample, "acknowledgements: |\n", "acknowledgements: |\n  ::: figure id=ack kind=sample_tiles\n"
                "  A figure in the acknowledgements.\n  :::\n\n")
    return at(c.sample, line) + ".*'acknowledgements'.*figure directive may only appear in the article body"


def figure_in_contributions(c: Ctx) -> str:
    line = edit(c.sample, "contributions: |\n", "contributions: |\n  ::: figure id=con kind=sample_tiles\n"
                "  Caption.\n  :::\n\n")
    return at(c.sample, line) + ".*'contributions'.*figure directive"


def figure_in_update(c: Ctx) -> str:
    line = edit(c.sample, "updates:\n", "updates:\n  - date: 2025-01-20\n    text: \"::: figure id=u kind=sample_tiles\\n"
                "x\\n:::\"\n")
    return at(c.sample, line) + ".*'updates'"


def fm_deeply_nested(c: Ctx) -> str:
    line = edit(c.sample, "doi: ", "deep: " + "[" * 1000 + "]" * 1000 + "\ndoi: ")
    return at(c.sample, line) + ".*nested"


def site_yml_deeply_nested(c: Ctx) -> str:
    append(c.root / "site.yml", "deep: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n")
    return at(c.root / "site.yml") + ".*nested"


def markdown_deep_lists(c: Ctx) -> str:
    line = append(c.sample, "".join("    " * i + "- item\n" for i in range(400)))  # 320 KB: under the size limit
    return at(c.sample) + ".*nested more than"


def markdown_deep_quotes(c: Ctx) -> str:
    line = append(c.sample, "> " * 3000 + "deep\n")
    return at(c.sample, line) + ".*nested more than"


def models_mixed_key_types(c: Ctx) -> str:
    edit(c.tiny / "index.md", "models:\n", 'models:\n  1: {factory: "tinynet:make", weights: tiny.pt}\n')
    return at(c.tiny / "index.md", 6) + ".*model name 1 must be a string"


def slug_with_nul(c: Ctx) -> str:
    edit(c.root / "site.yml", "- sample\n", '- "sam\\0ple"\n')
    return at(c.root / "site.yml", 0) + ".*bad folder name"


def slug_parent_folder(c: Ctx) -> str:
    edit(c.root / "site.yml", "- sample\n", "- sample\n- ..\n")
    return at(c.root / "site.yml", 0) + ".*bad folder name"


def slug_with_backslash(c: Ctx) -> str:
    edit(c.root / "site.yml", "- sample\n", "- 'a\\b'\n")
    return at(c.root / "site.yml", 0) + ".*bad folder name"


def jobs_flag_not_a_number(c: Ctx) -> str:
    c.args = ["--jobs", "four"]
    return ".*--jobs.*'four'"


def n_jobs_not_a_number(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis: {n_jobs: many}\n")
    return at(c.root / "site.yml", 0) + ".*n_jobs.*'many'"


def n_jobs_zero(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis: {n_jobs: 0}\n")
    return at(c.root / "site.yml", 0) + ".*n_jobs"


def featureviz_not_a_mapping(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis: {featureviz: 5}\n")
    return at(c.root / "site.yml", 0) + ".*featureviz"


def featureviz_negative_size(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis: {featureviz: {size: -64, steps: 2}}\n")
    return at(c.root / "site.yml", 0) + ".*featureviz"


def analysis_unknown_key(c: Ctx) -> str:
    append(c.root / "site.yml", "analysis: {modles: [efficientnet-lite0]}\n")
    return at(c.root / "site.yml", 0) + ".*unknown key.*modles"


def bibliography_dev_zero(c: Ctx) -> str:
    edit(c.sample, "bibliography: refs.bib", "bibliography: /dev/zero")
    return at(Path("/dev/zero"), 0) + ".*outside the project"


def bibliography_fifo(c: Ctx) -> str:
    os.mkfifo(c.sample.parent / "pipe.bib")
    edit(c.sample, "bibliography: refs.bib", "bibliography: pipe.bib")
    return at(c.sample.parent / "pipe.bib", 0) + ".*FIFO"


def bibliography_folder(c: Ctx) -> str:
    (c.sample.parent / "refs.d").mkdir()
    edit(c.sample, "bibliography: refs.bib", "bibliography: refs.d")
    return at(c.sample.parent / "refs.d", 0) + ".*folder"


def bibliography_outside_project(c: Ctx) -> str:
    outside = c.dir / "private.bib"
    shutil.copy(c.sample.parent / "refs.bib", outside)
    (c.sample.parent / "linked.bib").symlink_to(outside)
    edit(c.sample, "bibliography: refs.bib", "bibliography: linked.bib")
    return at(c.sample.parent / "linked.bib", 0) + ".*outside the project"


def serve_port_out_of_range(c: Ctx) -> str:
    c.args = ["serve", "--port", "99999"]
    return "build.py: argument --port: 99999 is not a port number"


def serve_port_negative(c: Ctx) -> str:
    c.args = ["serve", "--port", "-1"]
    return "build.py: argument --port"


def weights_expanded_view(c: Ctx) -> str:
    import torch

    state = tiny_state()
    state["conv1.weight"] = torch.zeros(1).expand(100000, 100000)  # 3 KB on disk; 40 GB if anything touches it
    save(state, c.tiny / "tiny.pt")
    return f".*{re.escape(str(c.tiny / 'tiny.pt'))}.*conv1.weight.*expanded view"


def fm_nul_in_bibliography(c: Ctx) -> str:
    line = edit(c.sample, "bibliography: refs.bib", 'bibliography: "refs\\0.bib"')
    return at(c.sample, line) + ".*'bibliography' contains the control character U\\+0000"


def fm_nul_in_title(c: Ctx) -> str:
    line = edit(c.sample, "title: A Sample Article", 'title: "A\\0Sample"')
    return at(c.sample, line) + ".*'title' contains the control character"


# -- hangs: bounded, and the message says what was being waited for

def fm_alias_bomb(c: Ctx) -> str:
    bomb = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 12))
    line = edit(c.sample, "doi: ", "l0: &l0 [lol]\n" + bomb + "doi: ")
    return at(c.sample, line + 1) + ".*alias"


def site_yml_alias_bomb(c: Ctx) -> str:
    append(c.root / "site.yml", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n")
    return at(c.root / "site.yml") + ".*alias"


def markdown_huge_file(c: Ctx) -> str:
    with c.sample.open("a", encoding="utf-8") as fh:
        fh.write(("Lorem ipsum dolor sit amet. " * 40 + "\n\n") * 6000)  # ~6.8 MB
    return at(c.sample, 0) + ".*MB; the limit is 1 MB"


def jinja_endless_loop(c: Ctx) -> str:
    line = append(c.sample, "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n")
    c.env["VW_RENDER_TIMEOUT"] = "3"
    return at(c.sample, line) + ".*did not finish within 3 s"


def jinja_output_bomb(c: Ctx) -> str:
    append(c.sample, "{% for i in range(100000) %}{% for j in range(1000) %}xxxxxxxxxx{% endfor %}{% endfor %}\n")
    return at(c.sample) + ".*more than 20 million characters"


def figure_huge_parameter(c: Ctx) -> str:
    line = edit(c.sample, "kind=sample_tiles n=5", "kind=sample_tiles n=100000000")
    return at(c.sample, line) + ".*n=100000000 must be from 1 to 100"


def figure_huge_width(c: Ctx) -> str:
    line = append(c.sample, "::: figure id=wide kind=sample_bars px=1000000000\nCaption.\n:::\n")
    return at(c.sample, line) + ".*px"


def weights_fifo(c: Ctx) -> str:
    (c.tiny / "tiny.pt").unlink()
    os.mkfifo(c.tiny / "tiny.pt")
    return at(c.tiny / "index.md", 7) + ".*FIFO"


def weights_folder(c: Ctx) -> str:
    (c.tiny / "tiny.pt").unlink()
    (c.tiny / "tiny.pt").mkdir()
    return at(c.tiny / "index.md", 7) + ".*is a folder"


def factory_never_returns(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "    return TinyNet()", "    while True:\n        pass")
    c.env["VW_FACTORY_TIMEOUT"] = "5"
    return at(c.tiny / "index.md", 7) + ".*did not return within 5 s"


# -- unclear messages

def strict_broken_link(c: Ctx) -> str:
    line = append(c.sample, "See [the missing page](missing-page.html).\n")
    c.args = ["--strict"]
    return at(c.sample, line) + ".*broken link.*missing-page.html"


def site_yml_duplicate_articles(c: Ctx) -> str:
    append(c.root / "site.yml", "articles: []\n")
    return at(c.root / "site.yml") + ".*duplicate key 'articles'"


def fm_duplicate_key(c: Ctx) -> str:
    line = edit(c.sample, "doi: ", "title: Another title\ndoi: ")
    return at(c.sample, line) + ".*duplicate key 'title'"


def article_listed_twice(c: Ctx) -> str:
    edit(c.root / "site.yml", "- sample\n", "- sample\n- sample\n")
    return at(c.root / "site.yml", 0) + ".*'sample' more than once"


def figure_unknown_parameter(c: Ctx) -> str:
    line = edit(c.sample, "width=l-screen color=#ca0020", "width=l-screen colour=#ca0020")
    return at(c.sample, line) + ".*unknown parameter.*colour"


def content_symlink_outside(c: Ctx) -> str:
    outside = c.dir / "outside"
    shutil.copytree(c.sample.parent, outside)
    (c.root / "content" / "linked").symlink_to(outside, target_is_directory=True)
    edit(c.root / "site.yml", "- sample\n", "- sample\n- linked\n")
    return at(c.root / "content" / "linked" / "index.md", 0) + ".*outside the project"


def article_file_symlink_outside(c: Ctx) -> str:
    outside = c.dir / "secret.md"
    shutil.copy(c.sample, outside)
    c.sample.unlink()
    c.sample.symlink_to(outside)
    return at(c.sample, 0) + ".*outside the project"


def article_is_a_fifo(c: Ctx) -> str:
    c.sample.unlink()
    os.mkfifo(c.sample)
    return at(c.sample, 0) + ".*FIFO"


# -- round three (issue 19): names that become paths, attribute chains, hangs in C, bidi text, huge files

def model_name_shares_a_folder(c: Ctx) -> str:
    """`tinynet.` and `tinynet` would be one folder (and one explorer page): refused, naming both declarations."""
    other = _second_tiny(c, "  tinynet: {", "  tinynet.: {")
    return (at(other / "index.md", 7) + r"front matter model 'tinynet\.' and model 'tinynet' \("
            + re.escape(str(c.tiny / "index.md")) + r":7\) would share the folder 'tinynet'")


def model_names_differ_in_case(c: Ctx) -> str:
    other = _second_tiny(c, "  tinynet: {", "  TinyNet: {")
    return at(other / "index.md", 7) + r".*'TinyNet' and model 'tinynet'.*would share the folder"


def factory_allowed_module_hands_out_os(c: Ctx) -> str:
    """site.yml allows analysis.models; its `os` must not be reachable through it (case 1 of issue 19)."""
    append(c.root / "site.yml", "factories: [analysis.models]\n")
    edit(c.tiny / "index.md", '{factory: "tinynet:make", weights: tiny.pt, image_size: 16}',
         f'{{factory: "analysis.models:os.popen", weights: tiny.pt, kwargs: {{cmd: "touch {c.dir / "PWNED"}"}}}}')
    return at(c.tiny / "index.md", 7) + ".*'analysis.models:os.popen': 'os' is a module"


def factory_allowed_module_reexports(c: Ctx) -> str:
    """An allowed module's attribute that it merely imported is refused: defined in the module's package only."""
    append(c.root / "site.yml", "factories: [analysis.models]\n")
    edit(c.tiny / "index.md", '"tinynet:make"', '"analysis.models:AnalysisError"')
    return at(c.tiny / "index.md", 7) + ".*defined in module 'analysis.core.errors', not in 'analysis.models' or its package"


def factory_dunder_chain(c: Ctx) -> str:
    edit(c.tiny / "index.md", '"tinynet:make"', '"tinynet:make.__globals__"')
    return at(c.tiny / "index.md", 7) + ".*'__globals__' is a special attribute"


def factory_stuck_in_c(c: Ctx) -> str:
    """9 ** (9 ** 9) is one call into C: no alarm interrupts it, the worker process is killed."""
    edit(c.tiny / "tinynet.py", "    return TinyNet()", "    return TinyNet(width=(9 ** (9 ** 9)) % 10 + 4)")
    c.env["VW_MODEL_TIMEOUT"] = "3"
    return at(c.tiny / "index.md", 7) + r".*'tinynet:make' did not return within 3 s"


def forward_never_returns(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "        x = torch.relu(self.conv1(x))\n", "        while True:\n            pass\n")
    c.env["VW_MODEL_TIMEOUT"] = "3"
    return at(c.tiny / "index.md", 7) + r".*did not (return|finish) within 3 s"


def forward_stuck_in_c(c: Ctx) -> str:
    edit(c.tiny / "tinynet.py", "        x = torch.relu(self.conv1(x))\n",
         "        x = torch.relu(self.conv1(x)) * ((9 ** (9 ** 9)) % 10)\n")
    c.env["VW_MODEL_TIMEOUT"] = "3"
    return at(c.tiny / "index.md", 7) + r".*did not (return|finish) within 3 s"


def factory_kwargs_huge(c: Ctx) -> str:
    """A 500 KB kwargs string: the error line quotes it cut short (tested below: the line stays under 2,100)."""
    edit(c.tiny / "index.md", "image_size: 16}", f"image_size: 16, kwargs: {{width: {'x' * 500_000}}}}}")
    return at(c.tiny / "index.md", 7) + r".*raised TypeError when called with \{'width': 'xxx.*characters\)"


def jinja_constant_folding(c: Ctx) -> str:
    """Jinja folds constants while it compiles, in C: an alarm never fires; the worker is killed."""
    line = append(c.sample, "{{ (9 ** (9 ** 9)) % 10 }}\n")
    c.env["VW_RENDER_TIMEOUT"] = "2"
    return at(c.sample, line) + ".*did not finish within 2 s"


def markdown_quadratic_brackets(c: Ctx) -> str:
    """40 KB of '[' took python-markdown 166 s (time grows with the square of the length)."""
    line = append(c.sample, "[" * 40_000 + "\n")
    c.env["VW_RENDER_TIMEOUT"] = "2"
    return at(c.sample) + ".*Markdown did not finish converting within 2 s"


def fm_bidi_in_title(c: Ctx) -> str:
    line = edit(c.sample, "title: A Sample Article", 'title: "A Sample \u202eelcitrA"')
    return at(c.sample, line) + ".*'title' contains the bidirectional control character U\\+202E"


def fm_bidi_in_author(c: Ctx) -> str:
    edit(c.sample, "  - name: Grace Sample", '  - name: "Grace \u2066Sample"')
    return at(c.sample, 6) + r".*'authors\[\d\].name' contains the bidirectional control character U\+2066"


def heading_takes_a_page_id(c: Ctx) -> str:
    """`## References` would take the appendix's id (and `## Main` the skip link's): renamed, and --strict says so."""
    line = append(c.sample, "## References\n\nText.\n")
    c.args = ["--strict"]
    return at(c.sample, line) + ".*the id 'references' is one the page gives an element of its own"


def article_folder_huge_sparse_file(c: Ctx) -> str:
    """A 64 GB sparse file beside the article: one line, without reading it (MemoryError before)."""
    huge = c.sample.parent / "dataset.bin"
    with open(huge, "wb") as fh:
        fh.truncate(64 * 1024 ** 3)
    return at(huge, 0) + r".*64\.0 GB; a file in an article's folder may be at most 1 GB"


# Needs analysis/pipeline.py run(): wrap the analysis of a bring-your-own model (analyse_tensors, first_layer,
# context) in `except Exception` (not AnalysisError) -> AnalysisError naming the innermost user frame and the
# factory, e.g. f"{file}:{line}: model factory {spec.factory!r}: analysis failed: {type(e).__name__}: {e}".
FORWARD_FIX = "a bring-your-own model whose forward() raises ends in a traceback (see FORWARD_FIX)"


@dataclass(frozen=True)
class Case:
    world: str  # "render" (sample article, no analysis) or "model" (tiny bring-your-own article)
    mutate: Callable[[Ctx], str]
    xfail: str = ""  # a known defect, owned elsewhere: strict, so fixing it turns this red until removed

    @property
    def id(self) -> str:
        return self.mutate.__name__


CASES = [Case("render", f) for f in (
    fm_malformed_yaml, fm_missing_field, fm_missing_authors, fm_invalid_date, fm_date_not_a_date,
    fm_authors_not_a_list, fm_author_unknown_key, fm_raw_html_not_bool, fm_missing, fm_unterminated,
    unknown_citation, unknown_figure_kind, unknown_fig_reference, figure_without_id, unknown_directive,
    unclosed_directive, undefined_data, template_sandbox_escape, body_template_syntax, bib_malformed, bib_missing,
    markdown_not_utf8, template_missing, template_syntax_error, site_yml_malformed, site_yml_missing,
    site_yml_articles_not_list, site_yml_article_without_folder, site_yml_analysis_not_mapping,
    site_yml_recipe_for_a_model_not_analysed, site_yml_recipe_unknown_field, site_yml_recipe_names_a_missing_layer,
    output_under_a_file,
    site_is_content, site_is_article_folder, site_inside_content, site_is_project, site_contains_project,
    site_is_templates, site_inside_templates, site_is_cache, site_inside_cache, site_contains_cache,
    site_symlink_to_content, site_foreign_folder, site_is_a_file, site_without_marker,
    author_url_javascript, affiliation_url_javascript, author_url_data,
    body_reserved_character, figure_in_acknowledgements, figure_in_contributions, figure_in_update,
    fm_deeply_nested, site_yml_deeply_nested, markdown_deep_lists, markdown_deep_quotes, slug_with_nul,
    slug_parent_folder, slug_with_backslash, jobs_flag_not_a_number, n_jobs_not_a_number,
    n_jobs_zero, featureviz_not_a_mapping, featureviz_negative_size, analysis_unknown_key, bibliography_dev_zero,
    bibliography_fifo, bibliography_folder, bibliography_outside_project, serve_port_out_of_range,
    serve_port_negative, fm_alias_bomb, site_yml_alias_bomb, markdown_huge_file, jinja_endless_loop,
    jinja_output_bomb, figure_huge_parameter, figure_huge_width, strict_broken_link, site_yml_duplicate_articles,
    fm_duplicate_key, article_listed_twice, figure_unknown_parameter, content_symlink_outside,
    article_file_symlink_outside, article_is_a_fifo, cache_is_content, cache_is_project, cache_inside_templates,
    fm_nul_in_bibliography, fm_nul_in_title,
)] + [Case("model", f) for f in (
    cache_under_a_file, weights_missing, weights_empty, weights_truncated, weights_wrong_keys, weights_wrong_shapes,
    weights_nan, weights_pickle_runs_code, googlenet_wrong_hash,
    factory_malformed, factory_no_module, factory_module_raises, factory_syntax_error, factory_no_attribute,
    factory_raises, factory_sys_exit_0, factory_system_exit_3, factory_module_exits_on_import, forward_sys_exit,
    model_name_two_weights, model_name_two_kwargs, model_name_two_factories, model_name_two_factory_files,
    factory_os_system, factory_builtins_eval, factory_subprocess_run, factory_installed_package,
    factory_shadows_stdlib, factory_reexported_module, factory_reexported_callable, factory_returns_not_a_module,
    factories_not_a_list, models_mixed_key_types, weights_expanded_view, weights_fifo, weights_folder,
    factory_never_returns, recipe_unknown_field, recipe_layer_name_typo, recipe_neuron_out_of_range,
    image_size_too_small, image_size_forward_fails,
)] + [Case("model", model_forward_fails)] + [Case("render", f) for f in (
    jinja_constant_folding, markdown_quadratic_brackets, fm_bidi_in_title, fm_bidi_in_author,
    heading_takes_a_page_id, article_folder_huge_sparse_file,
)] + [Case("model", f) for f in (
    model_name_shares_a_folder, model_names_differ_in_case, factory_allowed_module_hands_out_os,
    factory_allowed_module_reexports, factory_dunder_chain, factory_stuck_in_c, forward_never_returns,
    forward_stuck_in_c, factory_kwargs_huge,
)]
# Covered at unit level (tests/test_safeload.py, test_models_lab.py), not worth a torch import each here:
# inf values, a file that holds no dict, a factory returning a non-Module.
BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "two bad-input cases share an id: one would hide the other"


# --------------------------------------------------------------------------- worlds and outcomes


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> Path:
    """Two good builds: worlds/render (sample article) and worlds/model (tiny bring-your-own article)."""
    base = tmp_path_factory.mktemp("worlds").resolve()
    for name, articles, analysis, tiny in (("render", ["sample"], None, ()),
                                           ("model", ["tiny"], TINY_ANALYSIS, ("tiny",))):
        world = base / name
        make_root(world / "root", articles, analysis, tiny)
        check_ok(run_build(world / "root", world / "site", world / "cache"))
    return base


@dataclass
class Outcome:
    proc: subprocess.CompletedProcess
    expect: str  # regex after "error: "
    before: dict[str, str]
    after: dict[str, str]
    dir: Path
    root_before: dict[str, str] = field(default_factory=dict)  # the project (content/, templates/ ...)
    root_after: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # how long the failing build took


def run_case(worlds: Path, case: Case, cases_dir: Path) -> Outcome:
    c = Ctx(cases_dir / case.id)
    shutil.copytree(worlds / case.world, c.dir, symlinks=True)
    expect = case.mutate(c)
    before, root_before = tree_files(c.dir / "site"), tree_files(c.root)
    env = build_env(**c.env)
    cmd = build_cmd(c.root, c.site_dir or c.dir / "site", c.cache_dir or c.dir / "cache", *c.args)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=c.root, env=env, capture_output=True, text=True, timeout=300)
    return Outcome(proc, expect, before, tree_files(c.dir / "site"), c.dir, root_before, tree_files(c.root),
                   time.monotonic() - started)


@pytest.fixture(scope="module")
def outcomes(worlds, request, tmp_path_factory) -> dict[str, Outcome]:
    """Run the failing build of every selected case, concurrently."""
    wanted = [item.callspec.params["case_id"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec") and "case_id" in item.callspec.params]
    cases_dir = tmp_path_factory.mktemp("cases").resolve()
    ids = sorted(set(wanted), key=lambda i: BY_ID[i].world != "model")  # slow ones first
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1) as pool:
        results = pool.map(lambda i: run_case(worlds, BY_ID[i], cases_dir), ids)
        return dict(zip(ids, results))


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case_id", [pytest.param(c.id, marks=pytest.mark.xfail(strict=True, reason=c.xfail))
                                     if c.xfail else c.id for c in CASES])
def test_bad_input_fails_cleanly(case_id: str, outcomes):
    out = outcomes[case_id]
    proc = out.proc
    detail = f"\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode != 0, "the build succeeded" + detail
    assert "Traceback" not in proc.stderr + proc.stdout, detail
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"stderr must be exactly one line, got {len(lines)}" + detail
    assert re.match("error: " + out.expect, lines[0]), f"error line does not match {out.expect!r}" + detail
    assert out.after == out.before, "the previous site/ changed: " + tree_diff(out.before, out.after)
    assert out.root_after == out.root_before, "the project changed: " + tree_diff(out.root_before, out.root_after)
    assert not list(out.dir.glob(".site-tmp-*")), "a failed build left its temp folder behind"


def test_front_matter_cannot_run_a_shell_command(outcomes):
    out = outcomes["factory_os_system"]
    assert out.proc.returncode != 0
    assert not (out.dir / "PWNED").exists(), "factory: os:system ran a shell command"


def test_allowed_module_cannot_run_a_shell_command(outcomes):
    out = outcomes["factory_allowed_module_hands_out_os"]
    assert out.proc.returncode != 0
    assert not (out.dir / "PWNED").exists(), "analysis.models:os.popen ran a shell command"


def test_error_lines_quote_long_values_cut_short(outcomes):
    line = outcomes["factory_kwargs_huge"].proc.stderr
    assert len(line) < 2100, f"a {len(line)}-character error line"


def test_hangs_end_soon_after_their_limit(outcomes):
    """The worker is killed about a second past the limit (3 s or 2 s here), not at some later timeout."""
    for case, limit in (("factory_stuck_in_c", 3), ("forward_stuck_in_c", 3), ("jinja_constant_folding", 2),
                        ("markdown_quadratic_brackets", 2)):
        assert outcomes[case].seconds < limit + 60, (case, outcomes[case].seconds)


def test_poisoned_pickle_never_runs(outcomes):
    out = outcomes["weights_pickle_runs_code"]
    assert out.proc.returncode != 0
    assert not (out.dir / "PWNED").exists(), "loading the weights ran code from the pickle"


def test_debug_prints_the_traceback(worlds, tmp_path):
    """--debug is for developers: the same failure raises with its full traceback."""
    c = Ctx(tmp_path / "debug")
    shutil.copytree(worlds / "render", c.dir, symlinks=True)
    unknown_citation(c)
    proc = run_build(c.root, c.dir / "site", c.dir / "cache", "--debug")
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "BuildError" in proc.stderr and "nobody2099" in proc.stderr


def test_corrupt_cache_entry_is_recomputed(worlds, tmp_path):
    """A damaged analysis result is not an error: the freshness check notices it, the build recomputes it and
    renders the same site."""
    from analysis.core.fingerprint import manifest_is_fresh  # torch-free

    world = tmp_path / "world"
    shutil.copytree(worlds / "model", world, symlinks=True)
    root, site, cache = world / "root", world / "site", world / "cache"
    reference = tree_digest(site)
    manifest = cache / "analysis" / "manifest.json"
    fingerprint = json.loads(manifest.read_text(encoding="utf-8"))["fingerprint"]
    assert manifest_is_fresh(manifest, fingerprint)
    folder = cache / "analysis" / json.loads(manifest.read_text(encoding="utf-8"))["models"]["tinynet"]["folder"]
    first_layer, tensor = folder / "first-layer.json", folder / "tensors" / "conv1.json"
    good = first_layer.read_bytes(), tensor.read_bytes()
    first_layer.write_bytes(good[0][: len(good[0]) // 2])  # truncated JSON
    tensor.write_bytes(b"\x00garbage")
    assert not manifest_is_fresh(manifest, fingerprint)  # the manifest's hashes catch the damage
    proc = check_ok(run_build(root, site, cache))
    assert "analysis: inputs changed" in proc.stdout
    assert (first_layer.read_bytes(), tensor.read_bytes()) == good
    assert tree_digest(site) == reference


def test_factory_allow_list_and_shared_models(tmp_path):
    """Torch-free: a factory outside the article's folder is accepted only when site.yml's `factories:` lists it
    (then nothing is put on sys.path for it), and one model declared identically by two articles is analysed once."""
    from article.config.byo_spec import byo_models
    from article.config.site import load_config
    from article.structure.errors import BuildError

    root = tmp_path / "root"
    for slug in ("a", "b"):
        folder = root / "content" / slug
        folder.mkdir(parents=True)
        (folder / "index.md").write_text(
            "---\ntitle: T\ndescription: D\ndate: 2025-01-01\nauthors: [{name: N}]\nmodels:\n"
            "  shared: {factory: \"pkg.models:build\", weights: ../w.pt}\n---\nBody.\n", encoding="utf-8")
    (root / "content" / "w.pt").write_bytes(b"not empty")
    config = {"title": "T", "description": "D", "site_url": "https://example.org/", "articles": ["a", "b"]}
    import yaml

    (root / "site.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(BuildError, match=r"a/index.md:7: .*'pkg.models:build'.*factories:"):
        byo_models(root, load_config(root))
    for allowed in (["pkg.models:build"], ["pkg.models"]):
        (root / "site.yml").write_text(yaml.safe_dump(dict(config, factories=allowed)), encoding="utf-8")
        models = byo_models(root, load_config(root))
        assert [(m["name"], m["search_path"]) for m in models] == [("shared", None)]


def test_freshness_is_by_content_not_path_or_mtime(worlds, tmp_path):
    """A copy of the project somewhere else reuses the analysis cache as it is (no recompute); a weights file
    replaced by another of the same size and mtime is noticed (recompute)."""
    import torch

    from hardening_util import tiny_state_dict

    world = tmp_path / "moved" / "elsewhere" / "world"
    shutil.copytree(worlds / "model", world, symlinks=True)
    root, site, cache = world / "root", world / "site", world / "cache"
    proc = check_ok(run_build(root, site, cache))
    assert "analysis:" not in proc.stdout, "a copied project recomputed its analyses:\n" + proc.stdout

    weights = root / "content" / "tiny" / "tiny.pt"
    before = weights.stat()
    torch.save(tiny_state_dict(seed=1), weights)
    assert weights.stat().st_size == before.st_size, "the test needs a same-size replacement"
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_mtime_ns == before.st_mtime_ns
    proc = check_ok(run_build(root, site, cache))
    assert "analysis: inputs changed" in proc.stdout, "a replaced weights file was served stale:\n" + proc.stdout


def test_fingerprint_ignores_where_the_project_is(tmp_path):
    """Torch-free: the same files under two roots give one fingerprint; a changed byte changes it."""
    from analysis.core.fingerprint import fingerprint

    prints = []
    for name in ("a", "b"):
        folder = tmp_path / name / "content" / "x"
        folder.mkdir(parents=True)
        (folder / "w.pt").write_bytes(b"weights")
        prints.append(fingerprint({"models": []}, [folder / "w.pt"], tmp_path / name))
    assert prints[0] == prints[1]
    (tmp_path / "b" / "content" / "x" / "w.pt").write_bytes(b"weightz")  # same size
    assert fingerprint({"models": []}, [tmp_path / "b" / "content" / "x" / "w.pt"], tmp_path / "b") != prints[0]


# --------------------------------------------------------------------------- inputs that must now just work


def _render_copy(worlds: Path, tmp_path: Path) -> Ctx:
    c = Ctx(tmp_path / "world")
    shutil.copytree(worlds / "render", c.dir, symlinks=True)
    return c


def test_byte_order_mark_is_accepted(worlds, tmp_path):
    """A UTF-8 BOM before '---' (Windows editors) used to be "must start with '---'"."""
    c = _render_copy(worlds, tmp_path)
    c.sample.write_bytes(b"\xef\xbb\xbf" + c.sample.read_bytes())
    (c.root / "site.yml").write_bytes(b"\xef\xbb\xbf" + (c.root / "site.yml").read_bytes())
    check_ok(run_build(c.root, c.dir / "site", c.dir / "cache"))


def test_old_placeholder_text_is_just_text(worlds, tmp_path):
    """The renderer's placeholders used to be VWPH<n>Z: such text in a body crashed or pulled in other markup."""
    c = _render_copy(worlds, tmp_path)
    append(c.sample, "Literal VWPH0Z and VWPH99999Z stay text.\n")
    check_ok(run_build(c.root, c.dir / "site", c.dir / "cache"))
    assert "Literal VWPH0Z and VWPH99999Z stay text." in (c.dir / "site" / "sample" / "index.html").read_text()


DAMAGE = {  # cache file (glob, relative to the cache) -> replacement JSON of the wrong shape
    "render_cache_list": ("render/*.json", "[1, 2, 3]"),
    "render_cache_wrong_types": ("render/*.json", '{"reads": {}, "output": {"description": 5, "spec_text": null, '
                                 '"datasets_text": null, "svg": null, "html": ["x"], "links": [], "assets": {}}}'),
    "render_cache_evil_asset": ("render/*.json", '{"reads": {}, "output": {"description": "d", "spec_text": null, '
                                '"datasets_text": null, "svg": null, "html": "<p>planted</p>", "links": [], '
                                '"assets": {"../../../../escaped.png": ""}}}'),
    "bib_cache_list": ("render/bib-*.json", "[]"),
    "bib_cache_wrong_entry": ("render/bib-*.json", '{"voss2021visualizing": {"key": 1}}'),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_render_cache_is_a_miss(case, worlds, tmp_path):
    """Cache entries of the wrong JSON shape (planted or damaged) are recomputed: same site, nothing planted."""
    c = _render_copy(worlds, tmp_path)
    reference = tree_files(c.dir / "site")
    pattern, text = DAMAGE[case]
    hits = sorted((c.dir / "cache").glob(pattern))
    assert hits, f"no cache file matches {pattern}"
    for path in hits:
        path.write_text(text, encoding="utf-8")
    check_ok(run_build(c.root, c.dir / "site", c.dir / "cache"))
    assert tree_files(c.dir / "site") == reference, tree_diff(reference, tree_files(c.dir / "site"))
    assert not list(tmp_path.rglob("escaped.png"))


@pytest.mark.parametrize("files", ["{}", '"all"', '[{"sha256": "x"}]', '[{"path": 5, "sha256": "x"}]',
                                   '[{"path": "../../../../etc/hostname", "sha256": "x"}]'])
def test_damaged_manifest_is_stale_not_a_crash(files, tmp_path):
    """Torch-free: a manifest whose `files` has the wrong shape makes the analysis stale (recompute), no traceback."""
    from analysis.core.fingerprint import manifest_is_fresh

    manifest = tmp_path / "analysis" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text('{"fingerprint": "f", "files": %s}' % files, encoding="utf-8")
    assert manifest_is_fresh(manifest, "f") is False


def test_disk_full_names_the_site_folder(tmp_path):
    """[Errno 28] carries no file name: the one line names the site folder instead of nothing (or the temp)."""
    import errno

    from article.pipeline import _os_error

    site, tmp = tmp_path / "site", tmp_path / ".site-tmp-1"
    err = _os_error(OSError(errno.ENOSPC, "No space left on device"), tmp, site)
    assert str(err).startswith(f"{site}: writing the site failed: No space left on device")
    err = _os_error(IsADirectoryError(errno.EISDIR, "Is a directory", str(tmp / "sample" / "x.png")), tmp, site)
    assert str(err).startswith(f"{site / 'sample' / 'x.png'}: ") and ".site-tmp" not in str(err)
