"""The package's import graph: no upward edge, no cycle (function-level imports too).

Layers, bottom up: ``engine`` (plain torch) < ``attr`` (Captum adapters) <
``regularization`` < ``visualization`` < ``text`` < ``evaluation`` / ``jobs`` <
``cli_checks`` < ``cli``.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "captum_sigma"

#: What each part may import from the package (besides itself).
ALLOWED = {
    "_lazy": set(),
    "engine": set(),
    "attr": {"engine"},
    "regularization": {"attr", "engine"},
    "visualization": set(),
    "text": {"attr", "engine", "regularization", "visualization"},
    "evaluation": {
        "text",
        "attr",
        "engine",
        "regularization",
        "visualization",
        "cli_checks",
    },
    "jobs": {"text", "attr", "engine", "regularization", "visualization"},
    "llm": {"attr", "engine", "regularization", "visualization", "cli_checks", "_lazy"},
    "cli_checks": {"text", "attr", "engine", "regularization", "visualization", "jobs"},
    "cli": {
        "cli_checks",
        "text",
        "attr",
        "engine",
        "regularization",
        "visualization",
        "evaluation",
        "jobs",
        "llm",
    },
    "__init__": {"attr", "engine", "regularization", "_lazy"},
}


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_parts(path: Path):
    """The package parts a module imports, anywhere in it."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "captum_sigma" and len(parts) > 1:
                yield parts[1]


def module_graph():
    """``{module: {imported modules}}`` over the package's files."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("captum_sigma"):
                    for alias in node.names:
                        full = f"{node.module}.{alias.name}"
                        module = full if _is_module(full) else node.module
                        targets.add(module.removesuffix(".__init__"))
            elif isinstance(node, ast.Import):
                targets |= {
                    a.name for a in node.names if a.name.startswith("captum_sigma")
                }
        graph[name.removesuffix(".__init__")] = targets - {name}
    return graph


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_no_part_imports_a_part_above_it():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        part = part_of(path)
        for imported in set(imported_parts(path)) - {part}:
            if imported not in ALLOWED[part]:
                upward.append(f"{path.relative_to(PACKAGE)} -> {imported}")
    assert not upward, upward


def test_no_import_cycle_between_modules():
    graph = module_graph()
    state = {}
    cycles = []

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # a package __init__ importing its own modules is not a cycle of logic
    cycles = [c for c in cycles if not any(m == c[0].rsplit(".", 1)[0] for m in c)]
    assert not cycles, cycles


def test_no_private_module_is_imported_across_parts():
    crossing = []
    for path in PACKAGE.rglob("*.py"):
        part = part_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                names = parts + [alias.name for alias in node.names]
                private = [n for n in names[2:] if n.startswith("_")]
                if parts[0] == "captum_sigma" and len(parts) > 1 and private:
                    if parts[1] != part:
                        crossing.append(f"{path.relative_to(PACKAGE)}: {node.module}")
    assert not crossing, crossing
