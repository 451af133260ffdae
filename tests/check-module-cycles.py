#!/usr/bin/env python3
"""No module cycle: within every module of every crate, its child modules (files and folders)
must not use each other in a circle.

A reference is any path into the crate: `crate::a::b`, `super::x`, `self::y`, or a name a
`use` brings in. Each is resolved to the module file it lands in, then lifted to the child of
the common parent: `store/sync_state/page.rs` naming `crate::sync::protocol::X` is an arrow
from `store` to `sync` at the crate's root. Arrows between a folder's `mod.rs` and its own
children are the folder's facade (shared items down, re-exports up) and are not counted; every
arrow between two siblings is. Exits 1, naming each cycle, if any.

Run: python3 tests/check-module-cycles.py (tests/run-all.sh runs it).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (crate name as used in paths, its root file); binaries are crates of their own.
CRATES = [
    ("core/src", "lib.rs"),
    ("core/src/bin/suivi", "main.rs"),
    ("ffi/src", "lib.rs"),
    ("sync-server/src", "lib.rs"),
    ("tests/src", "lib.rs"),
    ("tests/src/bin/suivi-bench", "main.rs"),
]


def strip(text):
    """Code without comments, strings or `#[cfg(test)]` modules (a test module may use
    anything of its parent)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def modules(base, root_file):
    """Module path (tuple) -> file, for a crate whose root file is base/root_file."""
    found = {(): os.path.join(base, root_file)}
    pending = [()]
    while pending:
        path = pending.pop()
        file = found[path]
        folder = os.path.dirname(file) if os.path.basename(file) in ("mod.rs", "lib.rs", "main.rs") \
            else file[:-3]
        code = strip(open(file, encoding="utf-8").read())
        for name in re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code, re.M):
            for candidate in (os.path.join(folder, name + ".rs"), os.path.join(folder, name, "mod.rs")):
                if os.path.exists(candidate):
                    found[path + (name,)] = candidate
                    pending.append(path + (name,))
                    break
    return found


def references(code, here, mods):
    """The module paths `code` (in module `here`) names."""
    out = set()
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", code):
        parts = m.group(1).split("::")
        if parts[0] == "crate":
            path, rest = (), parts[1:]
        else:
            path = list(here)
            rest = parts
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    path = path[:-1]
                rest = rest[1:]
            path = tuple(path)
        out.add(deepest(path, rest, mods))
    # `use` groups: `use crate::a::{b, c::d}` names a::b and a::c.
    for m in re.finditer(r"\buse\s+((?:crate|super|self)(?:::\w+)*)::\{([^;]*)\}", code):
        parts = m.group(1).split("::")
        if parts[0] == "crate":
            path = ()
        else:
            path = list(here)
            for p in parts:
                if p == "super":
                    path = path[:-1]
            path = tuple(path)
            parts = [p for p in parts if p not in ("super", "self")]
            parts = ["crate"] + parts
        prefix = parts[1:]
        for item in re.findall(r"(\w+(?:::\w+)*)", m.group(2)):
            out.add(deepest(path, prefix + item.split("::"), mods))
    return out


def deepest(path, rest, mods):
    path = tuple(path)
    for part in rest:
        if path + (part,) in mods:
            path = path + (part,)
        else:
            break
    return path


def cycles_of(graph):
    """Every elementary cycle's nodes, found by depth-first search (graphs here are small)."""
    found, seen = [], set()

    def walk(start, node, trail):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                key = frozenset(trail)
                if key not in seen:
                    seen.add(key)
                    found.append(trail[:])
            elif nxt not in trail and nxt > start:
                walk(start, nxt, trail + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def main():
    problems = []
    for base, root_file in CRATES:
        mods = modules(os.path.join(ROOT, base), root_file)
        arrows = {}  # parent -> {child -> {child}}
        for here, file in mods.items():
            code = strip(open(file, encoding="utf-8").read())
            for target in references(code, here, mods):
                # The common parent, and the child of it on each side.
                common = 0
                while common < min(len(here), len(target)) and here[common] == target[common]:
                    common += 1
                if common == len(here) or common == len(target):
                    continue  # a module and its own ancestor or descendant: the facade
                parent = here[:common]
                a, b = here[common], target[common]
                arrows.setdefault(parent, {}).setdefault(a, set()).add(b)
        for parent, graph in arrows.items():
            for cycle in cycles_of(graph):
                where = "::".join(("crate",) + parent)
                problems.append(f"{base}: in {where}: " + " -> ".join(cycle + [cycle[0]]))
    for p in problems:
        print("module cycle:", p)
    if problems:
        sys.exit(1)
    print(f"no module cycle in {len(CRATES)} crates")


if __name__ == "__main__":
    main()
