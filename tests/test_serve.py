"""`python build.py serve` (live reload, error overlay, recovery) and the content-only rebuild path (fast, torch-free).

Each test builds a private project root in tmp_path: build.py copied, article/ analysis/ templates/ symlinked,
its own site.yml and content/ holding only the sample article, so the real site/ and .cache/ are never touched.
"""
from __future__ import annotations

import pytest

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "content" / "sample"
TAG = '<script src="/__livereload.js"'


def make_root(tmp_path: Path, site_yml_extra: str = "") -> Path:
    root = tmp_path / "proj"
    (root / "content").mkdir(parents=True)
    shutil.copy(REPO / "build.py", root / "build.py")
    for name in ("article", "analysis", "templates"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    shutil.copytree(SAMPLE, root / "content" / "sample")
    index = root / "content" / "sample" / "index.md"
    # The sample's free-form `models:` block is not a bring-your-own spec; these tests are about serving,
    # not about how the analysis stage reads front-matter models, so drop it.
    index.write_text(re.sub(r"^models:\n(?:[ \t]+.*\n)+", "", index.read_text(encoding="utf-8"), flags=re.M),
                     encoding="utf-8")
    (root / "site.yml").write_text(textwrap.dedent("""\
        title: Serve Test
        description: A one-article site for the serve tests.
        site_url: https://example.org/vw/
        articles:
          - sample
        """) + site_yml_extra, encoding="utf-8")
    return root


def env_without_cache_dir() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("VW_CACHE_DIR", None)
    env.pop("VW_SITE_URL", None)
    return env


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


class Server:
    """`python build.py serve --port 0` in a subprocess; a reader thread collects its output in ``log``."""

    def __init__(self, root: Path, cache: Path):
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "build.py", "serve", "--port", "0", "--host", "127.0.0.1", "--cache-dir", str(cache)],
            cwd=root, env=env_without_cache_dir(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=lambda: self.log.extend(self.proc.stdout), daemon=True)
        self.reader.start()
        try:
            self.url = wait_for(self._url, 60, "the server to start")
        except AssertionError:
            self.stop()
            raise AssertionError("serve did not start:\n" + "".join(self.log)) from None

    def _url(self) -> str | None:
        m = re.search(r"serving (http://127\.0\.0\.1:\d+/)", "".join(self.log))
        if m is None and self.proc.poll() is not None:
            raise AssertionError("serve exited:\n" + "".join(self.log))
        return m and m.group(1)

    def status(self) -> dict:
        code, ctype, body = get(self.url + "__livereload/status")
        assert code == 200 and ctype.startswith("application/json")
        return json.loads(body)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.reader.join(10)


@pytest.mark.slow
def test_serve_injects_reload_rebuilds_and_survives_errors(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    index = root / "content" / "sample" / "index.md"
    server = Server(root, tmp_path / "cache")
    try:
        code, ctype, page = get(server.url + "sample/")
        assert code == 200 and ctype.startswith("text/html")
        assert TAG.encode() in page
        on_disk = (root / "site" / "sample" / "index.html").read_bytes()
        assert b"__livereload" not in on_disk
        # The tag is the only difference: the built file is exactly what `python build.py` writes.
        assert re.sub(rb'<script src="/__livereload\.js"[^>]*></script>\n', b"", page) == on_disk
        code, ctype, js = get(server.url + "__livereload.js")
        assert code == 200 and "javascript" in ctype and b"/__livereload/status" in js
        code, _, _ = get(server.url + "no/such/page.html")
        assert code == 404
        assert (tmp_path / "cache" / "render").is_dir() and not (root / ".cache").exists()

        v0 = server.status()
        assert v0["ok"] and v0["error"] is None and v0["version"] >= 1

        # 1. Edit the Markdown: the version moves and the served page has the new words.
        text = index.read_text(encoding="utf-8")
        assert "This page exercises" in text
        index.write_text(text.replace("This page exercises", "This page zanzibarly exercises"), encoding="utf-8")
        v1 = wait_for(lambda: (s := server.status())["version"] > v0["version"] and s, 15, "a rebuild")
        assert v1["ok"] and b"zanzibarly" in get(server.url + "sample/index.html")[2]
        assert TAG.encode() + b' data-version="%d"' % v1["version"] in get(server.url + "sample/")[2]

        # 2. Break the front matter: the last good site stays, the error names file:line.
        good = index.read_text(encoding="utf-8")
        index.write_text(good.replace("title: A Sample Article", "title: [unclosed", 1), encoding="utf-8")
        bad = wait_for(lambda: (s := server.status())["error"] and s, 15, "the build error")
        assert not bad["ok"] and bad["version"] == v1["version"]
        assert re.search(r"content/sample/index\.md:\d+: ", bad["error"]), bad["error"]
        code, _, page = get(server.url + "sample/")
        assert code == 200 and b"zanzibarly" in page

        # 3. Fix it: recovers with a new version.
        index.write_text(good.replace("zanzibarly", "quokkaishly"), encoding="utf-8")
        v2 = wait_for(lambda: (s := server.status())["version"] > v1["version"] and s, 15, "recovery")
        assert v2["ok"] and v2["error"] is None
        page = get(server.url + "sample/")[2]
        assert b"quokkaishly" in page and b"zanzibarly" not in page
    finally:
        server.stop()
    out = "".join(server.log)
    assert re.search(r"error: content/sample/index\.md:\d+: .*serving the last good build", out), out


STUB_ANALYSIS = """
import json, sys, types
from pathlib import Path
stub = types.ModuleType("analysis.pipeline")  # stands in for the torch analysis: just writes a fresh manifest
stub.ModelSpec = lambda **kw: kw
stub.AnalysisConfig = lambda **kw: types.SimpleNamespace(**kw)
def run(cfg, progress=True):
    path = Path(cfg.cache_dir) / "analysis" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fingerprint": cfg.fingerprint, "files": []}))
stub.run = run
sys.modules["analysis.pipeline"] = stub
from article.analysis_stage import ensure_analysis
from article.config.site import load_config
root = Path.cwd()
print(ensure_analysis(root, load_config(root), Path(sys.argv[1]), progress=False))
"""

TIMED_REBUILD = """
import importlib.util, io, json, re, sys, time, contextlib
from pathlib import Path
root = Path.cwd()
spec = importlib.util.spec_from_file_location("build", root / "build.py")
build = importlib.util.module_from_spec(spec); spec.loader.exec_module(build)
index = root / "content" / "sample" / "index.md"
times = []
for word in ("warm", "first", "second"):
    index.write_text(re.sub(r"This (\\w+ )?page exercises", f"This {word} page exercises", index.read_text(), 1))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        rc = build.main(["build"])
    times.append(time.perf_counter() - t0)
    print(out.getvalue())
    assert rc == 0
print(json.dumps({"times": times, "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch"),
                  "html": "This second page" in (root / "site" / "sample" / "index.html").read_text()}))
"""


def run_with_fresh_analysis(cmd: list[str], root: Path, cache: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Make the analysis cache fresh (stub run), then run ``cmd``. The fingerprint hashes analysis/*.py, so a
    concurrent edit of the analysis package between the two steps makes it stale: try again then."""
    for _ in range(3):
        made = subprocess.run([sys.executable, "-c", STUB_ANALYSIS, str(cache)], cwd=root, env=env,
                              capture_output=True, text=True, timeout=60)
        assert made.stdout.strip() in ("computed", "fresh"), made.stderr
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
        if "analysis: inputs changed" not in done.stdout:
            return done
    raise AssertionError("the analysis cache went stale three times in a row:\n" + done.stdout + done.stderr)


@pytest.mark.slow
def test_content_rebuild_is_fast_torch_free_and_uses_vw_cache_dir(tmp_path: Path) -> None:
    # A site that does configure analyses, whose analysis cache is fresh (manifest written by a stub run).
    root = make_root(tmp_path, "analysis:\n  models: [stub-net]\n")
    cache = tmp_path / "cache"
    env = dict(env_without_cache_dir(), VW_CACHE_DIR=str(cache))

    # End to end through the CLI, cache folder from the environment only; torch must not even be imported.
    done = run_with_fresh_analysis([sys.executable, "-X", "importtime", "build.py"], root, cache, env)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "jinja2" in imported and "torch" not in imported, sorted(m for m in imported if "torch" in m)
    assert (cache / "render").is_dir() and not (root / ".cache").exists()
    assert (root / "site" / "sample" / "index.html").is_file()

    # A content-only edit, rebuilt in a warm process (what `serve` does): well under a second, still torch-free.
    timed = run_with_fresh_analysis([sys.executable, "-c", TIMED_REBUILD], root, cache, env)
    assert timed.returncode == 0, timed.stderr[-2000:]
    result = json.loads(timed.stdout.strip().splitlines()[-1])
    assert result["torch"] == [] and result["html"]
    assert min(result["times"][1:]) <= 1.0, result["times"]


def test_stale_analysis_builds_in_a_subprocess_and_keeps_torch_out_of_the_server(tmp_path: Path) -> None:
    # No manifest in the cache: the analysis stage wants to run, which the server must not do in process.
    root = make_root(tmp_path, "analysis:\n  models: [stub-net]\n")
    code = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from article.serve.command import Builder
        from build import build
        root = Path.cwd()
        builder = Builder(build, root, root / "site", Path(sys.argv[1]))
        error, seconds = builder([str(root / "content" / "sample" / "index.md")])
        print(json.dumps({"mode": builder.last_mode, "error": error,
                          "loaded": sorted(m for m in sys.modules if m.split(".")[0] == "torch"
                                           or m == "analysis.pipeline")}))
    """)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cache")], cwd=root,
                          env=env_without_cache_dir(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mode"] == "subprocess" and result["loaded"] == []
    assert result["error"] and "halted" not in result["error"]  # the analysis' own error, not our import block


def test_purge_forgets_project_modules_but_not_the_server(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import sys
        import article.pipeline, article.figures.sample, article.serve.command as serve
        gone = serve.purge_project_modules()
        assert "article.pipeline" in gone and "article.figures.registry" in gone and "article" in gone, gone
        assert "article.serve.command" in sys.modules and not any(m == "article.pipeline" for m in sys.modules)
        import article.pipeline as fresh  # imports again from disk
        assert fresh.build_site
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_inject_places_tag_before_last_body_end() -> None:
    from article.serve.liveserver import inject

    html = b"<html><body><p>x</p><pre></body></pre></body>\n</html>\n"
    out = inject(html, 7)
    assert out.count(b"__livereload.js") == 1
    assert out.endswith(b'<script src="/__livereload.js" data-version="7" data-poll="400" defer></script>\n</body>\n</html>\n')
    assert inject(b"<p>fragment</p>", 1).startswith(b"<p>fragment</p><script")


def test_poller_sees_edits_new_files_and_ignores_editor_junk(tmp_path: Path) -> None:
    from article.serve.watch import Poller

    root = make_root(tmp_path)
    poller = Poller(root)
    assert poller.poll() == []
    index = root / "content" / "sample" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\nMore.\n", encoding="utf-8")
    (root / "content" / "sample" / ".index.md.swp").write_text("junk")
    (root / "content" / "sample" / "4913").write_text("")
    assert poller.poll() == [str(index)]
    extra = root / "templates-extra.bib"
    extra.write_text("@misc{a, title={A}}\n")
    text = index.read_text(encoding="utf-8").replace("bibliography: refs.bib", "bibliography: ../../templates-extra.bib")
    index.write_text(text, encoding="utf-8")
    assert set(poller.poll()) == {str(index), str(extra.resolve())}
    extra.write_text("@misc{b, title={B}}\n")
    assert poller.poll() == [str(extra.resolve())]
