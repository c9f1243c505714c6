"""The Pages workflow's weights fetch (.github/fetch_weights.py) against a local HTTP server on 127.0.0.1: a right
file (random GoogLeNet weights named after their own sha256, as torchvision names its files) is downloaded once and
kept; a file whose hash or keys are wrong is refused with one line and leaves nothing behind."""
from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from analysis.models import googlenet

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".github" / "fetch_weights.py"


@pytest.fixture()
def server(tmp_path: Path):
    """(folder served, base URL, list of paths requested)."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def _named_by_hash(folder: Path, state: dict) -> Path:
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    path = folder / f"googlenet-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(path)
    return path


def _fetch(url: str, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), url, "--dest", str(dest)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


@pytest.mark.slow
def test_right_file_is_fetched_once_then_kept(server, tmp_path):
    served, base, requests = server
    torch.manual_seed(0)
    good = _named_by_hash(served, googlenet.GoogLeNet().state_dict())
    dest = tmp_path / "checkpoints"
    first = _fetch(f"{base}/{good.name}", dest)
    assert first.returncode == 0, first.stderr
    assert (dest / good.name).read_bytes() == good.read_bytes()
    assert "downloaded" in first.stdout and requests == [f"/{good.name}"]
    again = _fetch(f"{base}/{good.name}", dest)  # the workflow's cache restored it: nothing downloaded
    assert again.returncode == 0 and "already present" in again.stdout, again.stderr
    assert requests == [f"/{good.name}"]
    assert sorted(p.name for p in dest.iterdir()) == [good.name]


@pytest.mark.parametrize("wrong", ["hash", "keys"])
def test_wrong_file_is_refused_with_one_line(server, tmp_path, wrong):
    served, base, requests = server
    torch.manual_seed(0)
    state = googlenet.GoogLeNet().state_dict()
    if wrong == "hash":  # the real name, other bytes: what a corrupted or substituted download looks like
        torch.save(state, served / "googlenet-1378be20.pth")
        name, why = "googlenet-1378be20.pth", "does not start with 1378be20"
    else:  # named after its own hash, but not GoogLeNet's keys
        del state["inception5b.branch1.conv.weight"]
        name, why = _named_by_hash(served, state).name, "missing key(s): inception5b.branch1.conv.weight"
    dest = tmp_path / "checkpoints"
    proc = _fetch(f"{base}/{name}", dest)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and why in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and requests == [f"/{name}"]
    assert not dest.exists() or list(dest.iterdir()) == []  # no file, no temporary folder left


def test_unknown_or_unhashed_names_are_refused_before_any_download(server, tmp_path):
    _, base, requests = server
    for name in ("googlenet.pth", "densenet121-a639ec97.pth"):
        proc = _fetch(f"{base}/{name}", tmp_path / "checkpoints")
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert requests == []
