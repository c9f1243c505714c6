"""Code keys: a digest of the code that makes a value, taken from the import closure of the module that defines it.

A cached value is stale when the code that computed it changed, so every cache key holds a code key instead of a
version number someone has to remember to bump. ``code_key("analysis.tensor_stage")`` walks the imports of that
module's source (``ast``: imports inside functions count, as do ``importlib.import_module("literal")`` calls) and of
every project module they reach, and hashes:

* each project module (a file under this repository's root, parent packages' ``__init__`` included) by its bytes;
* each third-party library it reaches by its installed distribution and version (the ``.dist-info`` folder's name,
  e.g. ``altair-5.4.1.dist-info``), found without importing it;
* the Python version (the standard library comes with it).

So editing ``analysis/nmf.py`` changes the key of every module that imports it, directly or through another, and
no other; upgrading altair changes the keys of the figure modules that import it.

A process keys the code it runs: each file is read once per process, at about the time the process imported it, so
an edit during a long build (minutes of analysis) is not taken for the code that made its results; the next build
sees it. (``serve`` forgets every project module, this one included, before it rebuilds after an edit.) What each
source file imports is remembered by the file's sha256 in ``<cache>/code-imports.json`` (parsing the project's ~100
modules takes ~0.1 s; reading and hashing them ~4 ms), together with which distribution provides each library
(``importlib.metadata`` scans every installed distribution in ~0.15 s). Library versions are resolved once per
process, like any import. Standard library only: the render side uses it without torch.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project (above analysis/core/): its modules are keyed by content
MEMO_NAME = "code-imports.json"
MEMO_LIMIT = 4000  # parsed files remembered (one per version of each file seen); the oldest go first
PYTHON = f"python {sys.implementation.name} {sys.version_info[:3]}\n"
KEYS_LIMIT = 400  # keys remembered by their files' stat signatures
RACY_NS = 2_000_000_000  # a file changed this recently may change again without its stat changing: not remembered
_files: dict[str, tuple[str, bytes, list[int]]] = {}  # path -> (sha256, bytes, stat signature) as first read
_keys: dict[tuple[str, ...], str] = {}  # modules -> their code key, this process (its files are read once)
_libraries: dict[str, str] = {}  # top-level import name -> its distribution's stamp, this process
_memo: dict = {"path": None, "imports": {}, "libraries": {}, "keys": {}, "dirty": False}


def code_key(*modules: str, cache_dir: Path | str | None = None) -> str:
    """The code key of the named modules (dotted names of project modules): their import closure hashed.
    ``cache_dir``: where parsed imports are remembered between processes (none: parse again)."""
    known = _keys.get(modules)
    if known is not None:
        return known
    if cache_dir is not None:
        _use_memo(Path(cache_dir) / MEMO_NAME)
    key = _remembered(modules)
    if key is None:
        project, libraries = closure(modules)
        h = hashlib.sha256(PYTHON.encode())
        for name, digest in sorted(project.items()):
            h.update(f"{name} {digest}\n".encode())
        for top in sorted(libraries):
            h.update(f"lib {top} {library_stamp(top)}\n".encode())
        key = h.hexdigest()
        _remember(modules, key, project, libraries)
    _save_memo()
    _keys[modules] = key
    return key


def closure(modules: tuple[str, ...] | list[str]) -> tuple[dict[str, str], set[str]]:
    """({project module: sha256 of its file}, {third-party top-level import names}) reached from ``modules``."""
    project: dict[str, str] = {}
    libraries: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if not name or name in project or name == __name__:  # how keys are made is no input of what they key
            continue
        top = name.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        if not _is_project(top):
            libraries.add(top)
            continue
        found = _module_file(name)
        if found is None:  # `from package import attribute`: not a module; the package itself is already walked
            continue
        path, is_package = found
        digest, source = _read(path)
        project[name] = digest
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)  # importing a.b runs a/__init__.py first
        package = name if is_package else parent
        for level, module, names in _imports(digest, source):
            base = _absolute(level, module, package)
            if base is None:
                continue
            todo.append(base)
            todo += [f"{base}.{n}" for n in names]  # each may be a submodule (else skipped above)
    return project, libraries


def library_stamp(top: str) -> str:
    """The installed distribution providing import name ``top``, as its metadata folder's name (name and version);
    for a library without metadata, its location; "absent" when it is not installed. Once per process."""
    stamp = _libraries.get(top)
    if stamp is None:
        stamp = _libraries[top] = _find_distribution(top)
    return stamp


# ---------------------------------------------------------------------------------------------- project modules

_project_tops: dict[str, bool] = {}


def _is_project(top: str) -> bool:
    known = _project_tops.get(top)
    if known is None:
        known = _project_tops[top] = (ROOT / top / "__init__.py").is_file() or (ROOT / f"{top}.py").is_file()
    return known


_modules: dict[str, tuple[str, bool] | None] = {}  # dotted name -> (its file, is a package), this process


def _module_file(name: str) -> tuple[str, bool] | None:
    if name not in _modules:  # string paths: pathlib would be most of the cost of a key
        base = os.path.join(str(ROOT), *name.split("."))
        init, module = base + os.sep + "__init__.py", base + ".py"
        _modules[name] = (init, True) if os.path.isfile(init) else (module, False) if os.path.isfile(module) else None
    return _modules[name]


def _read(path: str) -> tuple[str, bytes]:
    """(sha256, bytes) of a source file as this process first read it."""
    kept = _files.get(path)
    if kept is None:
        with open(path, "rb") as f:
            data = f.read()
            st = os.fstat(f.fileno())  # the signature of what was read, for _remember
        sig = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
            sig = []  # just written: its stat may not change with its next edit, so it is not remembered by it
        kept = _files[path] = (hashlib.sha256(data).hexdigest(), data, sig)
    return kept[0], kept[1]


def forget() -> None:
    """Read every file again from now on (and look libraries up again): for a process that reloads its code."""
    _files.clear()
    _keys.clear()
    _modules.clear()
    _libraries.clear()
    _project_tops.clear()


def _imports(digest: str, source: bytes) -> list[list]:
    """Every import statement of a source file as [level, module, [names]] (parsed once per content)."""
    memo = _memo["imports"]
    found = memo.pop(digest, None)  # popped and put back: the most recently used go last (kept longest)
    if found is None:
        found = _parse_imports(source)
        _memo["dirty"] = True
    memo[digest] = found
    return found


def _parse_imports(source: bytes) -> list[list]:
    import ast  # only when the memo does not know the file (~1 ms to import)

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # it cannot be imported either; its bytes are still in the key
    out: list[list] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [[0, alias.name, []] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append([node.level, node.module or "", [a.name for a in node.names if a.name != "*"]])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
            out.append([0, node.args[0].value, []])
    return out


def _absolute(level: int, module: str, package: str) -> str | None:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
        return None
    base = parts[:len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


# ---------------------------------------------------------------------------------------------- libraries

def _find_distribution(top: str) -> str:
    import importlib.util

    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "absent"
    if spec.submodule_search_locations:
        site = os.path.dirname(os.path.abspath(list(spec.submodule_search_locations)[0]))
    elif spec.origin and os.path.isabs(spec.origin):
        site = os.path.dirname(spec.origin)
    else:
        return f"builtin {spec.origin}"
    known = _memo["libraries"].get(top)
    if isinstance(known, list) and len(known) == 2 and known[0] == site \
            and os.path.isdir(os.path.join(site, str(known[1]))):
        return str(known[1])
    stamp = _metadata_folder(top, site)
    if stamp is None:  # a module on the path that no installer recorded: where it is and when it changed
        st = os.stat(spec.origin or site)
        return f"unrecorded {spec.origin} {st.st_size} {st.st_mtime_ns}"
    _memo["libraries"][top] = [site, stamp]
    _memo["dirty"] = True
    return stamp


@functools.lru_cache(maxsize=1)
def _providers() -> dict[str, list[str]]:
    """Import name -> the distributions that provide it (every installed distribution read: once per process)."""
    import importlib.metadata

    return importlib.metadata.packages_distributions()


def _canonical(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _metadata_folder(top: str, site: str) -> str | None:
    """The `<name>-<version>.dist-info` (or .egg-info) folder in ``site`` of the distribution that provides ``top``."""
    providers = {_canonical(d) for d in _providers().get(top, [])} or {_canonical(top)}
    try:
        entries = sorted(os.listdir(site))
    except OSError:
        return None
    for entry in entries:
        if entry.endswith((".dist-info", ".egg-info")) and _canonical(entry.split("-")[0]) in providers:
            return entry
    return None


# ---------------------------------------------------------------------------------------------- the memo file

def _signature(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _memo_name(modules: tuple[str, ...]) -> str:
    """The memo's name for a closure: the modules *of this checkout*. Two checkouts sharing one cache folder (a
    worktree, a test root) have modules of the same names in other files: keyed by name alone, one checkout's key
    (its files unchanged) was taken for the other's, and a build served another checkout's figures."""
    return "\n".join((str(ROOT), *modules))


def _remembered(modules: tuple[str, ...]) -> str | None:
    """A key computed by an earlier process, when every file of its closure has the stat signature it had then (the
    rule of analysis/core/fingerprint.py's DigestMemo: an edit, a copy or a replacement changes the inode, size or ctime)
    and every library the same installed distribution: ~50 stats instead of reading and hashing ~50 files."""
    found = _memo["keys"].pop(_memo_name(modules), None)
    if not isinstance(found, dict) or found.get("python") != PYTHON:
        return None
    try:
        for path, *sig in found["files"]:
            if _signature(path) != sig:
                return None
        for top, where in found["libraries"]:
            known = _libraries.get(top)  # already looked up by this process: that is the truth
            if known is not None:
                if known != (os.path.basename(where) if where else "absent"):
                    return None
            elif (not os.path.isdir(where)) if where else _find_distribution(top) != "absent":
                return None
    except (OSError, TypeError, ValueError):
        return None
    _memo["keys"][_memo_name(modules)] = found  # most recently used last: kept longest
    return found["key"] if isinstance(found.get("key"), str) else None


def _remember(modules: tuple[str, ...], key: str, project: dict[str, str], libraries: set[str]) -> None:
    if _memo["path"] is None:
        return
    files = []
    for name in sorted(project):
        path = _module_file(name)[0]
        sig = _files[path][2]  # as it was when read: what the key was computed from
        if not sig:
            return
        files.append([path, *sig])
    libs = []
    for top in sorted(libraries):
        stamp, known = library_stamp(top), _memo["libraries"].get(top)
        if stamp == "absent":
            libs.append([top, ""])
        elif isinstance(known, list) and known[1] == stamp:
            libs.append([top, os.path.join(known[0], stamp)])
        else:
            return  # no installed metadata to check it by
    _memo["keys"][_memo_name(modules)] = {"key": key, "python": PYTHON, "files": files, "libraries": libs}
    _memo["dirty"] = True


def _use_memo(path: Path) -> None:
    if _memo["path"] == path:
        return
    try:
        loaded = json.loads(path.read_bytes())
    except (OSError, ValueError):
        loaded = {}
    if not isinstance(loaded, dict):
        loaded = {}
    imports, libraries, keys = (loaded.get(k) if isinstance(loaded.get(k), dict) else {}
                                for k in ("imports", "libraries", "keys"))
    # What this process already parsed stays (it is the same for the same bytes), the file's entries join it.
    _memo.update(path=path, imports={**{k: v for k, v in imports.items() if _valid(v)}, **_memo["imports"]},
                 libraries={**libraries, **_memo["libraries"]}, keys={**keys, **_memo["keys"]},
                 dirty=bool(_memo["imports"]))


def _valid(found) -> bool:
    return isinstance(found, list) and all(
        isinstance(i, list) and len(i) == 3 and isinstance(i[0], int) and isinstance(i[1], str)
        and isinstance(i[2], list) and all(isinstance(n, str) for n in i[2]) for i in found)


def _save_memo() -> None:
    """Write the memo when it changed (atomically; a read-only cache just goes without)."""
    path = _memo["path"]
    if not _memo["dirty"] or path is None:
        return
    for table, limit in (("imports", MEMO_LIMIT), ("keys", KEYS_LIMIT)):
        while len(_memo[table]) > limit:
            _memo[table].pop(next(iter(_memo[table])))
    from analysis.core.jsonio import write_bytes_atomic

    try:
        write_bytes_atomic(path, json.dumps({k: _memo[k] for k in ("imports", "libraries", "keys")},
                                            separators=(",", ":")).encode(), durable=False)
    except OSError:
        pass
    _memo["dirty"] = False
