"""The package's import graph in numbers: circles, upward imports across the layers, function-level imports.

Read from the source with ``ast`` (nothing is imported, so it runs on a broken tree too). The layers are those of
the ``layers`` contract in ``pyproject.toml`` (``[tool.importlinter]``), so this report and ``make lint`` cannot
disagree about what "upward" means. An import inside a function or a lambda is function-level; one inside
``if TYPE_CHECKING:`` still counts as module-level, as import-linter counts it.

    python tools/import_graph.py [--src src] [--package aape_lightning] [--pyproject pyproject.toml]
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Edge:
    """One import statement's reference from one package module to another."""

    importer: str
    imported: str
    line: int
    function_level: bool


def module_files(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (a package is its ``__init__``)."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: set[str]) -> list[str]:
    """The package modules one import statement names (``from a import b``: ``a.b`` if a module, else ``a``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = importer.split(".") if is_package else importer.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    out = []
    for name in names:
        while name and name not in modules:  # ``import a.b.c`` of a non-module attribute: its module
            name = name.rpartition(".")[0]
        if name and name != importer:
            out.append(name)
    return out


def edges(src: Path, package: str) -> list[Edge]:
    """Every import between the package's modules, each marked module- or function-level."""
    files = module_files(src, package)
    modules = set(files)
    found: list[Edge] = []
    for importer, path in files.items():
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, in_function: bool, importer=importer, is_package=is_package, path=path) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for imported in dict.fromkeys(_targets(child, importer, is_package, modules)):
                        found.append(Edge(importer, imported, child.lineno, in_function))
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


def circles(pairs: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(pairs):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(graph[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(out)


def sibling_circles(pairs: set[tuple[str, str]], packages: set[str]) -> list[list[str]]:
    """Circles between the children of each package (a child stands for itself and all below it), as
    import-linter's ``acyclic_siblings`` contract sees them."""
    out = []
    for package in sorted(packages):
        depth = package.count(".") + 1

        def child(module: str, package=package, depth=depth) -> str | None:
            inside = module.startswith(package + ".")
            return ".".join(module.split(".")[: depth + 1]) if inside else None

        lifted = {(child(a), child(b)) for a, b in pairs}
        out += circles({(a, b) for a, b in lifted if a and b and a != b})
    return out


def layers(pyproject: Path, package: str) -> list[list[str]]:
    """The layers of the contract with id "layers", top first, each a list of the package's top-level modules."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("importlinter", {})
    for contract in config.get("contracts", []):
        if contract.get("id") == "layers" and contract.get("containers") == [package]:
            return [[m.strip().strip("()") for m in layer.replace(":", "|").split("|")] for layer in contract["layers"]]
    raise SystemExit(f"{pyproject}: no [[tool.importlinter.contracts]] with id = 'layers' and containers = ['{package}']")


def report(src: Path, package: str, pyproject: Path) -> dict[str, int]:
    """Print the report; return its counts."""
    found = edges(src, package)
    level = {f"{package}.{m}": i for i, layer in enumerate(layers(pyproject, package)) for m in layer}

    def layer_of(module: str) -> int | None:
        return next((level[p] for p in level if module == p or module.startswith(p + ".")), None)

    module_level = circles({(e.importer, e.imported) for e in found if not e.function_level})
    every = circles({(e.importer, e.imported) for e in found})
    packages = {m for m, path in module_files(src, package).items() if path.name == "__init__.py"}
    between = sibling_circles({(e.importer, e.imported) for e in found}, packages)
    upward = [e for e in found if None not in (layer_of(e.importer), layer_of(e.imported))
              and layer_of(e.importer) > layer_of(e.imported)]  # fmt: skip
    local = [e for e in found if e.function_level]
    unlayered = sorted(m for m in module_files(src, package) if m != package and layer_of(m) is None)

    def rel(edge: Edge) -> str:
        return f"  {edge.importer}:{edge.line} -> {edge.imported}"

    sections = {"module-level import circles": module_level,
                "import circles counting function-level imports": every,
                "circles between subpackages (counting function-level imports)": between}  # fmt: skip
    for title, groups in sections.items():
        print(f"{title}: {len(groups)}")
        for group in groups:
            print("  " + " <-> ".join(m.removeprefix(package + ".") for m in group))
    print(f"upward imports (a lower layer importing a higher one): {len(upward)}")
    for edge in upward:
        print(rel(edge) + (" (function-level)" if edge.function_level else ""))
    print(f"function-level imports between the package's modules: {len(local)}")
    for edge in local:
        print(rel(edge))
    if unlayered:
        print(f"modules in no layer: {', '.join(unlayered)}")
    return {"module_level_circles": len(module_level), "circles": len(every), "subpackage_circles": len(between),
            "upward": len(upward),
            "function_level": len(local), "unlayered": len(unlayered)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=Path("src"))
    parser.add_argument("--package", default="aape_lightning")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    if not (args.src / args.package).is_dir():
        print(f"import_graph: no package folder {args.src / args.package}; pass --src and --package", file=sys.stderr)
        return 2
    report(args.src, args.package, args.pyproject)
    return 0


if __name__ == "__main__":
    sys.exit(main())
