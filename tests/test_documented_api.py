"""docs/api.md's documented signatures are the code's (names, order, defaults)."""

import ast
import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest

from captum_sigma import LayerSigmaAttribution, SigmaAttribution, SigmaOptions

README = Path(__file__).resolve().parents[1] / "docs" / "api.md"
DOCUMENTED = {
    "SigmaAttribution.attribute": SigmaAttribution.attribute,
    "LayerSigmaAttribution.attribute": LayerSigmaAttribution.attribute,
    "SigmaOptions": SigmaOptions,
}


def documented_calls():
    """Every documented call in the ```py (signature) blocks of docs/api.md."""
    calls = {}
    for block in re.findall(r"```py\n(.*?)```", README.read_text(), re.S):
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                name = ast.unparse(node.value.func)
                if name in DOCUMENTED:
                    calls[name] = node.value
    return calls


def code_parameters(function):
    """``[(name, default or inspect.Parameter.empty)]`` without ``self``."""
    target = inspect.unwrap(function)
    parameters = inspect.signature(target).parameters.values()
    return [(p.name, p.default) for p in parameters if p.name != "self"]


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_readme_signature_matches_the_code(name):
    call = documented_calls().get(name)
    assert call is not None, f"docs/api.md documents no signature block for {name}"
    documented = [(arg.id, inspect.Parameter.empty) for arg in call.args]
    documented += [(kw.arg, ast.literal_eval(kw.value)) for kw in call.keywords]
    assert documented == code_parameters(DOCUMENTED[name])


def test_options_are_one_object_not_flat_arguments():
    """``options`` is the one way to set a SigmaOptions field (no flat copy)."""
    names = {item.name for item in fields(SigmaOptions)}
    for method in (SigmaAttribution.attribute, LayerSigmaAttribution.attribute):
        parameters = dict(code_parameters(method))
        assert parameters.get("options", 0) is None
        assert not names & set(parameters)
