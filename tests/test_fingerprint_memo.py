"""The stat memo behind the analysis freshness check (analysis.core.fingerprint.DigestMemo): torch-free, real files."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

from analysis.core import fingerprint as fpm


def _memo_with(tmp_path, monkeypatch, data: bytes):
    monkeypatch.setattr(fpm, "RACY_S", -1.0)  # memoise even files written a moment ago (the test's own)
    f = tmp_path / "w.bin"
    f.write_bytes(data)
    memo = fpm.DigestMemo(tmp_path / "memo.json")
    assert memo.sha256(f) == hashlib.sha256(data).hexdigest()
    memo.save()
    return f, fpm.DigestMemo(tmp_path / "memo.json")


def test_a_remembered_digest_is_reused_without_reading_the_file(tmp_path, monkeypatch):
    f, memo = _memo_with(tmp_path, monkeypatch, b"weights" * 100)
    monkeypatch.setattr(fpm, "sha256_file", lambda p: (_ for _ in ()).throw(AssertionError("hashed again")))
    assert memo.sha256(f) == hashlib.sha256(b"weights" * 100).hexdigest()


def test_same_size_same_mtime_rewrite_is_noticed(tmp_path, monkeypatch):
    """An in-place rewrite with the mtime set back (what `cp -p`, `touch -r` or os.utime can do) changes ctime."""
    f, memo = _memo_with(tmp_path, monkeypatch, b"A" * 4096)
    before = f.stat()
    with open(f, "r+b") as fh:  # same inode, same size
        fh.write(b"B" * 4096)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert f.stat().st_mtime_ns == before.st_mtime_ns and f.stat().st_ino == before.st_ino
    assert memo.sha256(f) == hashlib.sha256(b"B" * 4096).hexdigest()


def test_a_copied_or_replaced_file_is_hashed_again(tmp_path, monkeypatch):
    f, memo = _memo_with(tmp_path, monkeypatch, b"A" * 4096)
    other = tmp_path / "other.bin"
    other.write_bytes(b"C" * 4096)
    shutil.copystat(f, other)
    os.replace(other, f)  # a new inode under the old name, same size and mtime
    assert memo.sha256(f) == hashlib.sha256(b"C" * 4096).hexdigest()


def test_young_files_are_never_memoised(tmp_path):
    """A file changed within the clock's granularity of being hashed could change again unseen (git's racy rule)."""
    f = tmp_path / "w.bin"
    f.write_bytes(b"fresh")
    memo = fpm.DigestMemo(tmp_path / "memo.json")
    memo.sha256(f)
    memo.save()
    assert not (tmp_path / "memo.json").exists() or str(f) not in json.loads((tmp_path / "memo.json").read_text())


def test_corrupt_or_planted_memo_is_ignored_or_only_a_hint(tmp_path, monkeypatch):
    f, _ = _memo_with(tmp_path, monkeypatch, b"A" * 10)
    for junk in (b"\x00garbage", b"[1, 2]", json.dumps({str(f): "not a list"}).encode(),
                 json.dumps({str(f): [0, 0, 10, 0, 0, "0" * 64]}).encode()):  # a wrong stat: a miss
        (tmp_path / "memo.json").write_bytes(junk)
        assert fpm.DigestMemo(tmp_path / "memo.json").sha256(f) == hashlib.sha256(b"A" * 10).hexdigest()


def test_manifest_check_catches_damage_behind_a_warm_memo(tmp_path, monkeypatch):
    """The freshness check with a memo that knows every file: a damaged file is still found."""
    monkeypatch.setattr(fpm, "RACY_S", -1.0)
    cache = tmp_path / "cache"
    (cache / "analysis").mkdir(parents=True)
    rec = cache / "analysis" / "r.json"
    rec.write_bytes(b'{"a": 1}')
    manifest = cache / "analysis" / "manifest.json"
    manifest.write_text(json.dumps({"fingerprint": "f", "files": [
        {"path": "r.json", "sha256": hashlib.sha256(b'{"a": 1}').hexdigest()}]}))
    assert fpm.manifest_is_fresh(manifest, "f")
    assert (cache / fpm.MEMO_NAME).is_file()
    assert fpm.manifest_is_fresh(manifest, "f")  # from the memo
    with open(rec, "r+b") as fh:
        fh.write(b'{"a": 2}')
    assert not fpm.manifest_is_fresh(manifest, "f")


def test_manifest_entries_outside_the_cache_are_never_fresh(tmp_path):
    """With the right sha256, still: a `..` path, a symlinked file and a symlinked folder that lead out of the cache."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_bytes(b"{}")
    digest = hashlib.sha256(b"{}").hexdigest()
    cache = tmp_path / "cache"
    (cache / "analysis").mkdir(parents=True)
    os.symlink(outside / "secret.json", cache / "analysis" / "link.json")
    os.symlink(outside, cache / "analysis" / "folder")
    (cache / "analysis" / "inside.json").write_bytes(b"{}")
    manifest = cache / "analysis" / "manifest.json"
    for rel in ("inside.json", "../../outside/secret.json", "link.json", "folder/secret.json"):
        manifest.write_text(json.dumps({"fingerprint": "f", "files": [{"path": rel, "sha256": digest}]}))
        assert fpm.manifest_is_fresh(manifest, "f") is (rel == "inside.json"), rel
