"""A corpus job's identity: everything that can change one byte of its results.

The identity is a nested JSON mapping recorded in the job's manifest: every option,
content hashes (SHA-256) of the model (its files, or its tensors and config), of its
tokenizer, of ``r`` (its data sample, or its values) and of the input, and the
versions of the packages that compute the numbers. A resume compares the new
identity with the recorded one field by field and names what differs.

Every hash here is deterministic across processes and machines: mappings are
hashed as canonical JSON (sorted keys), tensors as their names, dtypes, shapes and
bytes, and nothing that depends on where a file lives is included.
"""

import enum
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = [
    "canonical",
    "config_sha256",
    "files_sha256",
    "flatten",
    "identity_differences",
    "json_sha256",
    "module_sha256",
    "package_versions",
    "qualified_name",
    "tensor_sha256",
    "tensors_sha256",
    "texts_sha256",
    "tokenizer_sha256",
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


def qualified_name(value: Any) -> str:
    """``module.QualName`` of ``value``'s class (or of ``value`` if it is a class)."""
    kind = value if isinstance(value, type) else type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def canonical(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain JSON data that is the same in every process.

    Mappings get string keys, sets are sorted, tuples become lists, enums their
    value, dtypes and devices their name, tensors their hash; an object with a
    ``__getstate__`` mapping (e.g. a tokenizer's ``AddedToken``) becomes its class
    and state; any other object its ``repr`` unless that names a memory address
    (then its class only).
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if _depth > _MAX_DEPTH:
        return f"<{qualified_name(value)}>"
    deeper = _depth + 1
    if isinstance(value, Mapping):
        return {str(key): canonical(item, deeper) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item, deeper) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(item, deeper) for item in value), key=_json)
    if isinstance(value, enum.Enum):
        return canonical(value.value, deeper)
    if isinstance(value, (torch.dtype, torch.device, Path)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Tensor):
        return {"tensor_sha256": tensor_sha256(value)}
    state = _object_state(value)
    if state is not None:
        return {"class": qualified_name(value), "state": canonical(state, deeper)}
    text = repr(value)
    return f"<{qualified_name(value)}>" if " at 0x" in text else text


#: Nesting beyond which :func:`canonical` keeps an object's class only (cycles).
_MAX_DEPTH = 32


def _object_state(value: Any) -> Optional[Any]:
    getstate = getattr(value, "__getstate__", None)
    if getstate is None:
        return None
    try:
        state = getstate()
    except TypeError:
        return None
    return state if isinstance(state, Mapping) else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def json_sha256(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (:func:`canonical`, sorted keys)."""
    payload = _json(canonical(value))
    return hashlib.sha256(payload.encode("utf-8", "surrogateescape")).hexdigest()


def _update_with_tensor(digest: Any, tensor: Tensor) -> None:
    """Adds the dtype, the shape and the bytes (little-endian as stored)."""
    if tensor.is_meta:
        raise ValueError("a tensor on the meta device has no values to fingerprint")
    data = tensor.detach()
    if data.is_sparse:
        data = data.to_dense()
    data = data.resolve_conj().resolve_neg().to("cpu").contiguous().reshape(-1)
    digest.update(f"{data.dtype}\0{tuple(tensor.shape)}\0".encode())
    # bytes of any dtype (bf16, bool, complex...) through a uint8 view
    digest.update(data.view(torch.uint8).numpy().tobytes())


def tensor_sha256(tensor: Optional[Tensor]) -> Optional[str]:
    """SHA-256 of a tensor's dtype, shape and bytes; None for None.

    Args:
        tensor: Any dense tensor, on any device (copied to the CPU).
    """
    if tensor is None:
        return None
    digest = hashlib.sha256()
    _update_with_tensor(digest, tensor)
    return digest.hexdigest()


def tensors_sha256(named: Iterable[Tuple[str, Any]]) -> str:
    """One SHA-256 over named tensors, in the given order.

    Args:
        named: ``(name, tensor)`` pairs, e.g. ``model.state_dict().items()``; a
            value that is not a tensor (a module's extra state) is hashed as
            canonical JSON.
    """
    digest = hashlib.sha256()
    for name, value in named:
        digest.update(f"{name}\0".encode())
        if isinstance(value, Tensor):
            _update_with_tensor(digest, value)
        else:
            digest.update(_json(canonical(value)).encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    return digest.hexdigest()


def module_sha256(module: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes, bytes).

    The ``state_dict`` in its order, then the buffers it leaves out (non-persistent
    ones such as position ids), so that a model that never touched a file is
    identified by its numbers, wherever it lives (copied to the CPU to hash).
    """
    state = module.state_dict()
    extra = [(name, b) for name, b in module.named_buffers() if name not in state]
    return tensors_sha256([*state.items(), *extra])


#: Config entries that do not change the numbers: bookkeeping, where the model was
#: read from, and the dtype (the tensors' own dtypes are hashed).
_CONFIG_BOOKKEEPING = frozenset(
    {
        "_name_or_path",
        "name_or_path",
        "_commit_hash",
        "transformers_version",
        "architectures",
        "dtype",
        "torch_dtype",
    }
)


def config_sha256(model: nn.Module) -> Optional[str]:
    """SHA-256 of a Hugging Face model's config (None for a model without one).

    Every entry that can change the forward pass (activation, layer-norm epsilon,
    heads, ...) and the attention implementation are hashed; the path it was read
    from, the ``transformers`` version (recorded separately) and bookkeeping are not.
    """
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return None
    entries = {
        key: value
        for key, value in config.to_dict().items()
        if key not in _CONFIG_BOOKKEEPING
    }
    entries["attn_implementation"] = getattr(config, "_attn_implementation", None)
    return json_sha256(entries)


#: Tokenizer attributes that change how a text becomes ids and tokens.
_TOKENIZER_SETTINGS = (
    "model_max_length",
    "padding_side",
    "truncation_side",
    "pad_token_type_id",
    "is_fast",
)
#: ``init_kwargs`` that say where or how the tokenizer was read, not what it does.
_TOKENIZER_LOADING = frozenset(
    {
        "name_or_path",
        "is_local",
        "local_files_only",
        "cache_dir",
        "revision",
        "token",
        "use_auth_token",
        "trust_remote_code",
        "force_download",
        "proxies",
        "subfolder",
        "_commit_hash",
        "_from_auto",
        # the added tokens with their flags are hashed on their own
        "added_tokens_decoder",
    }
)
#: Keys of a fast tokenizer's description that are per-call state (the last call's
#: truncation and padding), not settings.
_BACKEND_CALL_STATE = ("truncation", "padding")


def tokenizer_sha256(tokenizer: Any) -> str:
    """SHA-256 of a Hugging Face tokenizer's vocabulary and settings.

    Hashed: the class, the vocabulary (sorted ``get_vocab()`` items), the special
    and added tokens, ``model_max_length``, the padding and truncation sides, the
    construction arguments (``do_lower_case``, ``strip_accents``...; file paths
    and loading options excluded) and, for a fast tokenizer, its complete
    ``backend_tokenizer`` description (normaliser, pre-tokeniser, model,
    post-processor) without the last call's truncation and padding state.

    Args:
        tokenizer: A Hugging Face tokenizer (slow or fast).
    """
    description: Dict[str, Any] = {
        "class": qualified_name(tokenizer),
        "vocab": sorted(tokenizer.get_vocab().items()),
        "special_tokens": getattr(tokenizer, "special_tokens_map", None),
        "added_tokens": {
            str(index): canonical(token)
            for index, token in sorted(
                (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()
            )
        },
        "settings": {
            name: getattr(tokenizer, name, None) for name in _TOKENIZER_SETTINGS
        },
        "init_kwargs": {
            key: _token_contents(value)
            for key, value in (getattr(tokenizer, "init_kwargs", None) or {}).items()
            if key not in _TOKENIZER_LOADING and not key.endswith(("_file", "_files"))
        },
        "backend": _backend_description(tokenizer),
    }
    return json_sha256(description)


def _token_contents(value: Any) -> Any:
    """Special tokens given as ``AddedToken`` objects as their text (a tokenizer
    read from files has objects where one built in memory has strings; their flags
    are hashed with the added tokens)."""
    if isinstance(value, (list, tuple)):
        return [_token_contents(item) for item in value]
    content = getattr(value, "content", None)
    return content if isinstance(content, str) else value


def _backend_description(tokenizer: Any) -> Optional[Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        return None
    description = json.loads(backend.to_str())
    for key in _BACKEND_CALL_STATE:
        description.pop(key, None)
    return description


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
