"""YAML as authors write it, with limits: no aliases (an alias bomb expands exponentially when walked), nesting at
most MAX_DEPTH deep (deeper structures ended in a RecursionError), no duplicate keys (PyYAML silently keeps the
last, so a second ``articles:`` published an empty site). Errors are BuildError at ``path:line``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..structure.errors import BuildError

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
        # Some parsers stop on deep nesting first, in their own words (PyYAML 6.0.4's libyaml: "exceeded maximum
        # nesting depth"): count it ourselves, so the limit and its message are this project's on every version.
        line = _too_deep_flow(text)
        if line is not None:
            raise BuildError(f"YAML nested more than {MAX_DEPTH} levels deep", path, line + first_line) from None
        return  # the loader reports syntax errors with its own message and line


def _too_deep_flow(text: str) -> int | None:
    """The 0-based line where flow collections ([ and {) first nest more than MAX_DEPTH deep, or None. Brackets in
    quoted scalars and comments do not count; a quote starts a scalar only where a value may begin."""
    depth, quote = 0, ""
    for number, line in enumerate(text.splitlines()):
        prev = ""
        i = 0
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 1
                elif ch == quote:
                    if quote == "'" and line[i + 1:i + 2] == "'":
                        i += 1
                    else:
                        quote = ""
            elif ch in "'\"" and prev in ("", ":", "-", "[", "{", ",", "?"):
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
                break
            elif ch in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    return number
            elif ch in "]}":
                depth = max(depth - 1, 0)
            if not ch.isspace():
                prev = ch
            i += 1
    return None


# Errors whose problem is found only after the mistake (an unclosed bracket or quote, a key without its colon): the
# parser reports where it gave up, often the next line; the mistake is where the construct began.
_STARTED_AT_CONTEXT = ("while parsing a flow", "while scanning a quoted scalar", "while scanning a simple key")


def mistake_line(exc: yaml.YAMLError) -> int | None:
    """The 0-based line of a YAML syntax error's mistake: where an unclosed construct began, else where the parser
    stopped; None when the error carries no position."""
    problem, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    if context is not None and str(getattr(exc, "context", "") or "").startswith(_STARTED_AT_CONTEXT):
        return context.line
    return problem.line if problem is not None else None


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
