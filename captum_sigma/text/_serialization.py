"""The dictionary layout shared by :class:`~captum_sigma.text.TextExplanation` and
:class:`~captum_sigma.text.WordsLayersExplanation` (``to_dict`` / ``from_dict``)."""

import dataclasses
from typing import Any, Dict, Mapping, Sequence

__all__ = ["explanation_fields", "explanation_record"]


def explanation_record(
    explanation: Any, format_version: int, units: Dict[str, str]
) -> Dict[str, Any]:
    """An explanation dataclass as a JSON-ready dictionary.

    Args:
        explanation: A dataclass with an ``offsets`` field.
        format_version: Written as ``format_version``.
        units: Written as ``units`` (field name -> unit).

    Returns:
        Its fields (``offsets`` as lists), then ``format_version`` and ``units``.
    """
    data = dataclasses.asdict(explanation)
    if explanation.offsets is not None:
        data["offsets"] = [list(span) for span in explanation.offsets]
    data["format_version"] = format_version
    data["units"] = units
    return data


def explanation_fields(
    cls: type,
    data: Mapping[str, Any],
    format_version: int,
    derived_keys: Sequence[str],
    required: Sequence[str],
) -> Dict[str, Any]:
    """The arguments of ``cls`` in a dictionary written by its ``to_dict``.

    Args:
        cls: The explanation dataclass.
        data: The dictionary.
        format_version: The newest ``format_version`` that ``cls`` reads.
        derived_keys: Keys ``to_dict`` adds for readers, ignored here.
        required: Fields ``data`` must hold.

    Raises:
        ValueError: If ``data`` lacks a required field, has an unknown one or comes
            from a newer format.
    """
    version = data.get("format_version", 1)
    if not isinstance(version, int) or version > format_version:
        raise ValueError(
            f"data: format_version {version!r} is newer than this version of "
            f"captum_sigma reads ({format_version}); upgrade captum_sigma"
        )
    fields = {field.name for field in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k not in derived_keys}
    unknown = sorted(set(values) - fields)
    missing = sorted(set(required) - set(values))
    if unknown or missing:
        raise ValueError(
            f"data: not a {cls.__name__} dictionary (unknown keys {unknown}, "
            f"missing keys {missing})"
        )
    return values
