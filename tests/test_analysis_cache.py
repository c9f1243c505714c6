"""The analysis cache's primitive: a record is found by its key; corrupt, stale or incomplete entries are misses."""
from __future__ import annotations

from analysis.cache import Entry


def test_a_stored_record_is_found_by_its_key_with_its_picture(tmp_path):
    entry = Entry(tmp_path / "m" / "first-layer.json", "k1")
    stored = entry.put({"value": 1.5}, png=b"\x89PNG picture")
    assert entry.get(picture=True) == stored
    assert stored["key"] == "k1" and stored["value"] == 1.5 and entry.png.read_bytes() == b"\x89PNG picture"
    assert Entry(entry.path, "k2").get() is None  # another key: stale


def test_corrupt_or_foreign_records_are_misses(tmp_path):
    entry = Entry(tmp_path / "r.json", "k")
    entry.put({"value": 1})
    entry.path.write_text('{"key": "k", "val')  # a killed writer of an older kind, or a disk error
    assert entry.get() is None
    entry.path.write_text('["k"]')
    assert entry.get() is None
    entry.put({"value": 1})
    assert Entry(entry.path, "k", schema="another/1").get() is None


def test_a_missing_or_changed_picture_is_a_miss(tmp_path):
    entry = Entry(tmp_path / "r.json", "k", schema=None, png_field="sha256")
    entry.put({"value": 1}, png=b"one")
    entry.png.write_bytes(b"two")  # e.g. a newer picture written, then the build killed before its record
    assert entry.get(picture=True) is None
    entry.png.unlink()
    assert entry.get(picture=True) is None
    assert entry.get() is not None  # the record alone is intact: callers that need no picture still hit
