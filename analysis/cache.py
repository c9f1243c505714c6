"""The analysis cache's one primitive: a JSON record at a path, found by its key; a missing, corrupt, stale or
incomplete record is a miss (the caller recomputes it).

A record's key holds the code key of the module that computes it (analysis/core/codekey.py: its import closure, project
modules by content, libraries by version), so editing analysis/nmf.py misses every record whose maker imports it and
no other; nobody bumps a version by hand.

A record may have one picture beside it (same name, `.png`) whose sha256 it carries. The picture is written first
and the record last, each atomically, so the record is the commit marker: a build killed in between leaves a miss,
never a record that points at a missing or half-written picture. Tensor records, first-layer filters, context
records and feature visualizations all use it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from analysis.core import jsonio
from analysis.core.codekey import code_key
from analysis.core.spec import SCHEMA


def entry_key(maker: str, weights_sha: str, *parts) -> str:
    """The key of an analysis record: the code key of ``maker`` (the dotted name of the module that computes it),
    the model's key and what the record was computed from."""
    return hashlib.sha256("|".join([code_key(maker), weights_sha, *map(str, parts)]).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    path: Path  # the JSON record
    key: str
    schema: str | None = SCHEMA  # also required to match when not None
    png_field: str = "png_sha256"  # the record's field holding its picture's sha256

    @property
    def png(self) -> Path:
        return self.path.with_suffix(".png")

    def get(self, picture: bool = False) -> dict | None:
        """The record when its key (and schema) match and, with `picture`, its PNG is intact; else None."""
        record = jsonio.read_json(self.path)
        if not isinstance(record, dict) or record.get("key") != self.key:
            return None
        if self.schema is not None and record.get("schema") != self.schema:
            return None
        if picture:
            try:
                if jsonio.sha256_file(self.png) != record.get(self.png_field):
                    return None
            except OSError:
                return None
        return record

    def put(self, record: dict, png: bytes | None = None) -> dict:
        """Write the picture (if any), then the record with its key, schema and the picture's sha256; return it."""
        record = {**record, "key": self.key}
        if self.schema is not None:
            record["schema"] = self.schema
        if png is not None:
            jsonio.write_bytes_atomic(self.png, png)
            record[self.png_field] = jsonio.sha256_bytes(png)
        jsonio.write_json(self.path, record)
        return record
