#!/usr/bin/env python3
"""Layout check run by `make lint` (python3 from the system, standard library only).

Two rules, over the library sources of every crate (`src/` and `crates/*/src`):

1. Size: no file has more than MAX_LINES lines above its first `#[cfg(test)]` (its production
   code, comments included). Test-only files (`tests.rs`, `*_tests.rs`, or modules declared
   under `#[cfg(test)]`) are not counted.
2. Layering: no import cycle between files. An edge a -> b is any `crate::`, `super::`,
   `self::` or child-module path in a's production code (above its first `#[cfg(test)]`) that
   names an item in b, directly or through a `use` tree. A module declaring its children
   (`mod x;`) is not an edge; a parent that re-exports or uses a child is.
3. Layers: nothing under src/github/ names anything under src/objects/.

Every violation is printed. The allow-list (scripts/layout-allow.txt) names the files that may
still break a rule while they are being split: `size <file>`, `layer <file>`, and
`cycle <file>` (a cycle passes when every file in it is listed). Those are printed as "allowed"; an entry that no longer
matches is printed as a note, to be deleted. The list is meant to become empty.

Usage: scripts/check-layout.py [--root DIR] [--allow FILE] [--no-allow]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

MAX_LINES = 600
TEST_ATTR = re.compile(r"^\s*#\[cfg\(test\)\]")
MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;")
USE_STMT = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
PATH_REF = re.compile(r"(?<![$\w])((?:crate|super|self)(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")


def strip_comments_and_strings(text: str) -> str:
    """Blanks out comments, string and char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Crate:
    """One crate: its files, each with a module path (tuple of names)."""

    def __init__(self, name: str, root_file: Path):
        self.name = name
        self.files: dict[tuple, Path] = {}
        self.test_only: set[tuple] = set()
        self._walk(root_file, (), test_only=False, is_dir_owner=True)
        # name -> file, for the names each module re-exports with `pub use`.
        self.reexports: dict[tuple, dict[str, tuple]] = {}
        for module in self.files:
            self.reexports[module] = {}
        for module in self.files:
            code = strip_comments_and_strings(production_text(self.files[module])[0])
            for m in PUB_USE.finditer(code):
                for path, alias in expand_use_tree_named(m.group(1)):
                    target = self.resolve(module, path, follow=False)
                    if target is not None and alias and alias != "*":
                        self.reexports[module][alias] = (target, path)

    def _walk(self, path: Path, module: tuple, test_only: bool, is_dir_owner: bool):
        self.files[module] = path
        if test_only:
            self.test_only.add(module)
        lines = path.read_text().splitlines()
        base = path.parent if is_dir_owner else path.parent / path.stem
        for k, line in enumerate(lines):
            m = MOD_DECL.match(line)
            if not m:
                continue
            child = m.group(1)
            under_test = test_only or any(TEST_ATTR.match(lines[j]) for j in range(max(0, k - 2), k))
            for candidate, owner in ((base / f"{child}.rs", False), (base / child / "mod.rs", True)):
                if candidate.exists():
                    self._walk(candidate, module + (child,), under_test, owner)
                    break

    def resolve(self, module: tuple, path: list[str], follow: bool = True) -> tuple | None:
        """The file (module path) a `use`/inline path names, seen from `module`."""
        if not path:
            return None
        head, rest = path[0], path[1:]
        if head == "crate":
            start = ()
        elif head == "super":
            start = module[:-1]
            while rest and rest[0] == "super":
                start, rest = start[:-1], rest[1:]
        elif head == "self":
            start = module
        elif module + (head,) in self.files:
            start, rest = module + (head,), rest
        else:
            return None  # an external crate, std, or a local item
        target = start
        for k, segment in enumerate(rest):
            if target + (segment,) in self.files:
                target = target + (segment,)
                continue
            # An item the module re-exports lives in the file it comes from.
            seen = 0
            while follow and seen < 16 and segment in self.reexports.get(target, {}):
                target, origin = self.reexports[target][segment]
                seen += 1
                if origin and origin[-1] != segment:
                    segment = origin[-1]
            break
        return target


PUB_USE = re.compile(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", re.S)


def expand_use_tree_named(tree: str) -> list[tuple[list[str], str]]:
    """Like expand_use_tree, with the name each leaf is bound to (its alias, if any)."""
    out = []
    aliased = re.sub(r"([A-Za-z_][A-Za-z0-9_]*)\s+as\s+([A-Za-z_][A-Za-z0-9_]*)", r"\1@\2", tree)
    for path in expand_use_tree(aliased):
        if not path:
            continue
        last = path[-1]
        if "@" in last:
            name, alias = last.split("@", 1)
            out.append((path[:-1] + [name], alias))
        else:
            out.append((path, last))
    return out


def expand_use_tree(tree: str) -> list[list[str]]:
    """`a::{b, c::{d, e as f}, self}` -> [[a,b], [a,c,d], [a,c,e], [a]]."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s: str) -> list[str]:
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(s: str, prefix: list[str]) -> list[list[str]]:
        if "{" in s:
            head, _, inner = s.partition("{")
            inner = inner[: inner.rfind("}")]
            head_parts = [p for p in head.split("::") if p]
            out = []
            for part in split_top(inner):
                out.extend(walk(part, prefix + head_parts))
            return out
        parts = [p for p in s.split("::") if p and p != "*"]
        if parts and parts[-1] == "self":
            parts = parts[:-1]
        return [prefix + parts]

    return walk(tree, [])


def production_text(path: Path) -> tuple[str, int]:
    """The file's text above its first `#[cfg(test)]`, and that line count."""
    lines = path.read_text().splitlines()
    for k, line in enumerate(lines):
        if TEST_ATTR.match(line):
            return "\n".join(lines[:k]), k
    return "\n".join(lines), len(lines)


def edges_of(crate: Crate, module: tuple) -> dict[tuple, int]:
    """The files `module` names, each with the first line naming it."""
    text, _ = production_text(crate.files[module])
    code = strip_comments_and_strings(text)
    found: dict[tuple, int] = {}

    def add(target, offset):
        if target is None or target == module:
            return
        # A child module's own file is not an edge back up: only the parent's use of it is.
        line = code.count("\n", 0, offset) + 1
        found.setdefault(target, line)

    for m in USE_STMT.finditer(code):
        tree = m.group(1).strip()
        tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
        for path in expand_use_tree(tree):
            add(crate.resolve(module, path), m.start())
    for m in PATH_REF.finditer(code):
        path = [p.strip() for p in m.group(1).split("::")]
        add(crate.resolve(module, path), m.start())
    return found


def cycles(graph: dict[tuple, dict[tuple, int]]) -> list[list[tuple]]:
    """The strongly connected components of more than one node (Tarjan), each as a cycle."""
    index: dict[tuple, int] = {}
    low: dict[tuple, int] = {}
    stack: list[tuple] = []
    on_stack: set[tuple] = set()
    comps: list[list[tuple]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return comps


def one_cycle(graph, comp: list[tuple]) -> list[tuple]:
    """A shortest cycle through the component's first node, for printing."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, {})):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=Path(__file__).resolve().parent.parent, type=Path)
    parser.add_argument("--allow", default=None, type=Path)
    parser.add_argument("--no-allow", action="store_true", help="ignore the allow-list")
    args = parser.parse_args()
    root: Path = args.root
    allow_file = args.allow or root / "scripts" / "layout-allow.txt"
    allowed = set()
    if allow_file.exists() and not args.no_allow:
        for line in allow_file.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                allowed.add(line)

    crates = [Crate("ghplane", root / "src" / "lib.rs")]
    for lib in sorted((root / "crates").glob("*/src/lib.rs")):
        crates.append(Crate(lib.parent.parent.name, lib))

    failed = False
    used: set[str] = set()
    for crate in crates:
        for module, path in sorted(crate.files.items()):
            rel = path.relative_to(root).as_posix()
            if module in crate.test_only or path.name == "tests.rs" or path.name.endswith("_tests.rs"):
                continue
            _, lines = production_text(path)
            if lines > MAX_LINES:
                key = f"size {rel}"
                failed |= report(key in allowed, f"{rel}: {lines} lines above its tests (at most {MAX_LINES})")
                used.add(key)
        graph = {m: edges_of(crate, m) for m in crate.files if m not in crate.test_only}
        # The GitHub client is a layer below the objects: it never names one.
        for module, targets in sorted(graph.items()):
            if crate.name == "ghplane" and module[:1] == ("github",):
                for target, line in sorted(targets.items()):
                    if target[:1] == ("objects",):
                        rel = crate.files[module].relative_to(root).as_posix()
                        key = f"layer {rel}"
                        used.add(key)
                        failed |= report(key in allowed, f"{rel}:{line}: src/github/ imports {crate.files[target].relative_to(root).as_posix()}")
        for comp in cycles(graph):
            names = [crate.files[m].relative_to(root).as_posix() for m in comp]
            cycle = one_cycle(graph, comp)
            steps = [f"{crate.files[a].relative_to(root).as_posix()}:{graph[a][b]}" for a, b in zip(cycle, cycle[1:])]
            shown = " -> ".join(steps + [crate.files[cycle[-1]].relative_to(root).as_posix()])
            if len(comp) > len(cycle) - 1:
                shown += f" (one of the cycles among {len(comp)} files: {', '.join(names)})"
            keys = {f"cycle {n}" for n in names}
            used |= keys & allowed
            failed |= report(keys <= allowed, f"import cycle: {shown}")

    for key in sorted(allowed - used):
        print(f"note: allow-list entry no longer needed, remove it from {allow_file.relative_to(root)}: {key}")
    if failed:
        print("layout check failed (scripts/check-layout.py; file:line is where the next file is named)")
        return 1
    print(f"layout ok ({sum(len(c.files) for c in crates)} files; {len(allowed)} allowed violations left)")
    return 0


def report(allowed: bool, message: str) -> bool:
    """Prints one violation; true when it fails the check."""
    print(("allowed: " if allowed else "layout: ") + message)
    return not allowed


if __name__ == "__main__":
    sys.exit(main())
