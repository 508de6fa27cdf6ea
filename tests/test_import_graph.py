"""The package's import graph: no upward edge, no cycle (function-level imports too).

Layers, bottom up: ``engine`` (plain torch) < ``attr`` (Captum adapters) <
``regularization`` < ``visualization`` < ``text`` < ``evaluation`` / ``jobs`` /
``llm`` < ``cli`` (the command line, on top: nothing imports it).
"""

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "captum_sigma"

#: What each part may import from the package (besides itself).
ALLOWED = {
    "_lazy": set(),
    "engine": {"_lazy"},
    "attr": {"engine"},
    "regularization": {"attr", "engine"},
    "visualization": set(),
    "text": {"attr", "engine", "regularization", "visualization", "_lazy"},
    "evaluation": {
        "text",
        "attr",
        "engine",
        "regularization",
        "visualization",
        "_lazy",
    },
    "jobs": {"text", "attr", "engine", "regularization", "visualization"},
    "llm": {"attr", "engine", "regularization", "visualization", "_lazy"},
    "cli": {
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

#: The one module that imports Captum's private helpers (``captum._utils``,
#: ``captum.attr._*``): it imports nothing from the package, and every part that
#: uses Captum may import it.
COMPAT = "_captum_compat"
ALLOWED[COMPAT] = set()
for _part in set(ALLOWED) - {COMPAT, "_lazy", "engine", "visualization"}:
    ALLOWED[_part].add(COMPAT)


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


def test_the_cli_is_the_top_layer():
    """No module of the library imports the command line (0 upward edges)."""
    assert all("cli" not in allowed for part, allowed in ALLOWED.items())
    upward = [
        f"{path.relative_to(PACKAGE)} -> cli"
        for path in PACKAGE.rglob("*.py")
        if part_of(path) != "cli" and "cli" in set(imported_parts(path))
    ]
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


# -- Captum's private names: in one compatibility module ----------------------------

#: Modules that still import a private Captum name themselves; each is to import it
#: from ``_captum_compat`` instead (which provides it already). The list only
#: shrinks: an entry that no longer needs to be here fails the test.
PENDING_COMPAT: set = set()


def private_captum_imports(path: Path):
    """``module:name`` of every private Captum name the module imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            pairs = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in pairs:
            parts = module.split(".") + ([name] if name else [])
            if parts[0] == "captum" and any(p.startswith("_") for p in parts[1:]):
                found.append(f"{module}:{name}" if name else module)
    return found


def test_private_captum_names_are_imported_by_the_compat_module_only():
    offenders = []
    stale = [name for name in PENDING_COMPAT if not (PACKAGE / name).is_file()]
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        found = private_captum_imports(path)
        if relative in PENDING_COMPAT and not found:
            stale.append(relative)
        elif found and relative not in PENDING_COMPAT | {f"{COMPAT}.py"}:
            offenders.append(f"{relative}: {found}")
    assert not offenders, offenders
    assert not stale, f"remove from PENDING_COMPAT: {stale}"
    assert private_captum_imports(PACKAGE / f"{COMPAT}.py")


def test_compat_module_exports_public_names():
    """The rest of the package imports public names (see the test above)."""
    compat = importlib.import_module(f"captum_sigma.{COMPAT}")
    assert compat.__all__ and not [n for n in compat.__all__ if n.startswith("_")]
    assert all(hasattr(compat, name) for name in compat.__all__)


# -- Helpers used across parts are exported by their part ---------------------------

#: The command line wires every part's modules together (it is the top layer and
#: has its own rules above); the other parts use each other's public names only.
WIRING_PARTS = {"cli"}


def exported_names(part: str):
    """A part's public names: its package's (or its module's) ``__all__``."""
    return set(importlib.import_module(f"captum_sigma.{part}").__all__)


def test_other_parts_import_only_exported_names():
    """``from captum_sigma.P.m import n`` in another part needs ``n`` in ``P``'s
    ``__all__`` (``P/__init__.py``): a cross-part helper is exported by its part,
    or it lives in a package-wide private module (``_lazy``, ``_captum_compat``)."""
    unexported = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = part_of(path)
        if part in WIRING_PARTS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                pairs = [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                pairs = [a.name.rpartition(".")[::2] for a in node.names]
            else:
                continue
            for module, name in pairs:
                parts = module.split(".")
                if parts[0] != "captum_sigma" or len(parts) < 2:
                    continue
                target = parts[1]
                if target in (part, "__init__") or target.startswith("_"):
                    continue
                if name not in exported_names(target):
                    relative = path.relative_to(PACKAGE)
                    unexported.append(f"{relative}: {module}.{name}")
    assert not unexported, unexported
