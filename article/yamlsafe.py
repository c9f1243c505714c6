"""YAML as authors write it, with limits: no aliases (an alias bomb expands exponentially when walked), nesting at
most MAX_DEPTH deep (deeper structures ended in a RecursionError), no duplicate keys (PyYAML silently keeps the
last, so a second ``articles:`` published an empty site). Errors are BuildError at ``path:line``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import BuildError

MAX_DEPTH = 40
# libyaml's C parser when PyYAML was built with it: the same events, nodes and marks, several times faster (front
# matter is parsed on every build, see bench/README.md); the pure-Python parser otherwise.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check(text: str, path: Path, first_line: int = 1) -> None:
    """Scan the events (no recursion): refuse aliases and nesting deeper than MAX_DEPTH."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=SAFE_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise BuildError(f"YAML alias '*{event.anchor}' is not supported here: write the value out",
                                 path, event.start_mark.line + first_line)
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise BuildError(f"YAML nested more than {MAX_DEPTH} levels deep", path,
                                     event.start_mark.line + first_line)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return  # the loader reports syntax errors with its own message and line


class _UniqueKeyLoader(SAFE_LOADER):  # type: ignore[misc, valid-type]
    pass


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                    key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str, path: Path, first_line: int = 1) -> Any:
    """yaml.safe_load with the limits above; YAML syntax errors propagate as yaml.YAMLError (callers word them).
    first_line: the file line of the text's first line."""
    check(text, path, first_line)
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
