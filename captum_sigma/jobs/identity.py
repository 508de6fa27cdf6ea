"""A corpus job's identity: everything that can change one byte of its results.

The identity is a nested JSON mapping recorded in the job's manifest: every option,
content hashes (SHA-256) of the model's files, of the ``r`` data sample and of the
input, and the versions of the packages that compute the numbers. A resume compares
the new identity with the recorded one field by field and names what differs.
"""

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Union

__all__ = [
    "files_sha256",
    "flatten",
    "identity_differences",
    "package_versions",
    "texts_sha256",
]

_CHUNK_BYTES = 1 << 20


def _update_with_file(digest: Any, path: Path) -> None:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)


def _visible_files(folder: Path) -> List[Path]:
    """Every file under ``folder`` except hidden ones (``.git``, ``.cache``...)."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def files_sha256(paths: Iterable[Union[str, Path]]) -> str:
    """One SHA-256 over the names and contents of files and folders.

    A folder contributes each of its files (hidden ones excluded) under its path
    relative to the folder, so the hash follows the content, not where it lives.

    Args:
        paths: Files and folders, in a fixed order.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    for item in map(Path, paths):
        members = _visible_files(item) if item.is_dir() else [item]
        for path in members:
            name = path.name if path == item else path.relative_to(item).as_posix()
            digest.update(f"{name}\0{path.stat().st_size}\0".encode())
            _update_with_file(digest, path)
    return digest.hexdigest()


def texts_sha256(texts: Sequence[str]) -> str:
    """SHA-256 of a list of texts (the ``r`` data sample)."""
    payload = json.dumps(list(texts), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogateescape")).hexdigest()


def package_versions() -> Dict[str, str]:
    """Versions of the packages that compute the results."""
    import captum
    import torch
    import transformers

    import captum_sigma

    return {
        "captum_sigma": captum_sigma.__version__,
        "captum": captum.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: Dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def identity_differences(
    recorded: Mapping[str, Any], current: Mapping[str, Any], limit: int = 4
) -> List[str]:
    """The fields whose values differ, as ``"field: recorded -> current"``.

    Args:
        recorded: The identity in the manifest.
        current: This run's identity.
        limit: Most differences listed (values are shortened).
    """
    old, new = flatten(recorded), flatten(current)
    names = sorted(
        name for name in set(old) | set(new) if old.get(name) != new.get(name)
    )
    return [
        f"{name}: {_short(old.get(name))} -> {_short(new.get(name))}"
        for name in names[:limit]
    ] + ([f"and {len(names) - limit} more"] if len(names) > limit else [])


def _short(value: Any, size: int = 24) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= size else text[: size - 3] + "..."
