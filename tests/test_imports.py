"""The package's import graph: no module imports itself back through others, and the loaders'
rooms keep to themselves.

The graph is built from the source (``ast``), not from ``sys.modules``, so an import hidden in a
function counts as much as one at the top of a module: a cycle through a function-level import
is still a tangle, it just fails later. Only imports under ``if TYPE_CHECKING:`` are left out:
they never run. An edge goes to the module named (``from pkg import mod`` reaches ``pkg.mod``
when ``mod`` is a module, else ``pkg``); importing ``pkg.mod`` also runs ``pkg/__init__.py``,
but that implicit edge is not drawn (a package importing its own submodules is not a cycle).
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "forensics"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    walk(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            walk(child)

    walk(tree)
    return found


def import_graph() -> nx.DiGraph:
    """Directed graph of the ``forensics`` modules: an edge ``a -> b`` when ``a`` imports ``b``."""
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph.add_edge(name, target, line=node.lineno)
    return graph


def test_the_graph_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert graph.has_edge("forensics.loaders.core.sniff", "forensics.loaders.core.registry")  # relative
    assert graph.has_edge("forensics.case", "forensics.loaders")  # inside Case.load
    assert graph.has_edge("forensics.loaders.core.context", "forensics.schema")  # from forensics import schema
    assert not graph.has_edge("forensics.loaders.core.api", "forensics.case")  # only under TYPE_CHECKING
    assert graph.number_of_nodes() > 100


def test_no_import_cycles():
    graph = import_graph()
    cycles = sorted(nx.simple_cycles(graph))
    shown = [" -> ".join(c + [c[0]]) for c in cycles[:10]]
    assert not cycles, f"{len(cycles)} import cycle(s), e.g.:\n" + "\n".join(shown)


#: loaders/ modules other rooms may import: the shared machinery and the shared helpers of a
#: signal or of a family of formats. A format's own folder (e.g. traces/zipkin/) is private to it.
SHARED = ("forensics.loaders.core", "forensics.loaders.traces.jaeger_zipkin", "forensics.loaders.logs.common",
          "forensics.loaders.traces.otlp.requests")


def _room(module: str) -> str | None:
    """The format folder (``forensics.loaders.<signal>.<format>``) a module lies in, else None."""
    parts = module.split(".")
    if parts[:2] != ["forensics", "loaders"] or len(parts) < 5 or parts[2] == "core":
        return None
    return ".".join(parts[:4])


def test_a_format_folder_is_imported_only_from_itself():
    graph = import_graph()
    strays = [f"{a} imports {b} (line {d['line']})" for a, b, d in graph.edges(data=True)
              if _room(b) is not None and _room(a) != _room(b) and not b.startswith(SHARED)]
    assert not strays, ("a format's folder is private to it: promote what two rooms need to "
                        "loaders/core/ (or the signal's shared module)\n" + "\n".join(strays))


def test_formats_are_discovered_in_every_room():
    from forensics.loaders import formats

    signals = {spec.name: spec.__module__ if hasattr(spec, "__module__") else "" for spec in formats().values()}
    assert {"otlp_json", "otlp_proto", "jaeger_json", "jaeger_api_v3", "zipkin_json", "json_logs", "logfmt",
            "plain_logs", "container_logs", "prometheus_text", "prom_api_json", "metrics_csv", "k8s_events",
            "k8s_pods", "deploy_log"} <= signals.keys()
    rooms = {spec.load.__module__.split(".")[2] for spec in formats().values()}
    assert {"traces", "logs", "metrics", "events"} <= rooms


def test_every_folder_of_the_package_is_a_package():
    """``packages.find`` in pyproject.toml only ships folders with an ``__init__.py``; the
    ``.sql`` files beside them ride along as package data (``**/*.sql``)."""
    folders = {p.parent for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts}
    folders |= {p.parent for p in ROOT.rglob("*.sql")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []
    from setuptools import find_packages

    shipped = set(find_packages(str(ROOT.parent), include=["forensics*"]))
    assert {"forensics.loaders.core", "forensics.loaders.traces.otlp", "forensics.loaders.tables"} <= shipped
