"""Names a package imports on first use (PEP 562), so importing it loads no torch."""

import importlib
import sys
import types
from typing import Any, Callable, Dict, List, Tuple

__all__ = ["lazy_exports", "lazy_package"]


def lazy_exports(
    package: str, exports: Dict[str, str], namespace: Dict[str, Any]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package with lazy ``exports``.

    Args:
        package: The package's name (for the error message).
        exports: Public name -> the module that defines it.
        namespace: The package's ``globals()``; a name is cached there on first use.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> List[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__


def lazy_package(
    package: str, exports: Dict[str, str], namespace: Dict[str, Any]
) -> Tuple[List[str], Callable[[str], Any], Callable[[], List[str]]]:
    """The ``__all__``, ``__getattr__`` and ``__dir__`` of a package whose public
    names are all lazy ``exports``.

    An export named like the module that defines it (``compare`` of
    ``captum_sigma.evaluation.compare``) stays the package's attribute when that
    module is imported, as it did with an eager ``from ... import``.

    Args:
        package: The package's ``__name__`` (already in ``sys.modules``).
        exports: Public name -> the module that defines it.
        namespace: The package's ``globals()``; a name is cached there on first use.

    Returns:
        ``(__all__, __getattr__, __dir__)``: the exports' names, sorted, and the two
        functions of :func:`lazy_exports`.
    """
    if any(module == f"{package}.{name}" for name, module in exports.items()):
        sys.modules[package].__class__ = _exports_first(exports)
    return (sorted(exports), *lazy_exports(package, exports, namespace))


def _exports_first(exports: Dict[str, str]) -> type:
    """A module class that does not let the import system bind a submodule over
    the export of the same name (which ``__getattr__`` then loads)."""

    class Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if isinstance(value, types.ModuleType) and exports.get(name) == (
                value.__name__
            ):
                return
            super().__setattr__(name, value)

    return Package
