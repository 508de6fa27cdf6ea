"""One options object, ``options=``, and the return type overloaded on the flags."""

import inspect
import sys
import typing
from dataclasses import fields, replace
from typing import Literal, Tuple, Union

import pytest
import torch

from captum_sigma import (
    REFERENCE_OPTIONS,
    LayerSigmaAttribution,
    LLMSigmaAttribution,
    SigmaAttribution,
    SigmaOptions,
)


def sequence_model(dim: int = 6):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.Tanh())
    return lambda x: net(x).sum(1)


def embedding_model():
    torch.manual_seed(0)
    embeddings = torch.nn.Embedding(12, 6)
    head = torch.nn.Linear(6, 3)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings, self.head = embeddings, head

        def forward(self, ids):
            return self.head(torch.tanh(self.embeddings(ids)).mean(1))

    return Model()


INPUTS = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(1))
IDS = torch.tensor([[1, 4, 7, 2], [3, 5, 9, 0]])


def test_options_is_the_only_way_to_set_a_field():
    """No flat argument repeats a SigmaOptions field (one way to set each)."""
    names = {item.name for item in fields(SigmaOptions)}
    for method in (
        SigmaAttribution.attribute,
        LayerSigmaAttribution.attribute,
        LLMSigmaAttribution.attribute,
    ):
        parameters = inspect.signature(inspect.unwrap(method)).parameters
        assert "options" in parameters
        assert not names & set(parameters), method.__qualname__
    with pytest.raises(TypeError, match="n_steps"):
        SigmaAttribution(sequence_model()).attribute(INPUTS, n_steps=3)


def test_options_default_and_position():
    sigma = SigmaAttribution(sequence_model())
    options = SigmaOptions(n_steps=7, lr=0.3, seed=4, selection="average")
    by_keyword = sigma.attribute(INPUTS, options=options)
    assert torch.equal(sigma.attribute(INPUTS, None, None, None, options), by_keyword)
    # None stands for SigmaOptions()
    assert torch.equal(
        sigma.attribute(INPUTS, target=0),
        sigma.attribute(INPUTS, target=0, options=SigmaOptions()),
    )


def test_arguments_after_options_are_keyword_only():
    for method in (SigmaAttribution.attribute, LayerSigmaAttribution.attribute):
        parameters = list(inspect.signature(inspect.unwrap(method)).parameters.values())
        after = parameters[[p.name for p in parameters].index("options") + 1 :]
        assert after and all(p.kind is p.KEYWORD_ONLY for p in after)
    with pytest.raises(TypeError):
        SigmaAttribution(sequence_model()).attribute(
            INPUTS, None, None, None, None, 1.0
        )


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="typing.get_overloads needs Python 3.11"
)
@pytest.mark.parametrize("cls", [SigmaAttribution, LayerSigmaAttribution])
def test_return_type_is_overloaded_on_return_sigma(cls):
    """As Captum's ``return_convergence_delta``: one overload per combination."""
    returns = {}
    for overload in typing.get_overloads(cls.attribute):
        hints = typing.get_type_hints(overload)
        key = (hints["return_sigma"], hints["return_standard_error"])
        returns[key] = hints["return"]
    false, true = Literal[False], Literal[True]
    attributions = Union[torch.Tensor, Tuple[torch.Tensor, ...]]
    assert returns[(false, false)] == attributions
    assert returns[(true, false)] == Tuple[attributions, torch.Tensor]
    assert returns[(false, true)] == Tuple[attributions, torch.Tensor]
    assert returns[(true, true)] == Tuple[attributions, torch.Tensor, torch.Tensor]
    assert (bool, bool) in returns  # a plain bool still type-checks


def test_return_values_follow_the_flags():
    sigma = SigmaAttribution(sequence_model())
    options = SigmaOptions(n_steps=3)
    attr = sigma.attribute(INPUTS, options=options)
    assert isinstance(attr, torch.Tensor)
    with_sigma = sigma.attribute(INPUTS, options=options, return_sigma=True)
    with_error = sigma.attribute(INPUTS, options=options, return_standard_error=True)
    both = sigma.attribute(
        INPUTS, options=options, return_sigma=True, return_standard_error=True
    )
    assert len(with_sigma) == len(with_error) == 2 and len(both) == 3
    assert torch.equal(both[0], attr) and torch.equal(both[1], with_sigma[1])
    assert torch.equal(both[2], with_error[1])


def test_antithetic_is_passable_and_changes_the_draws():
    sigma = SigmaAttribution(sequence_model())
    base = SigmaOptions(n_steps=5, n_samples=2, init="constant")
    plain = sigma.attribute(INPUTS, options=base)
    paired = sigma.attribute(INPUTS, options=replace(base, antithetic=True))
    assert not torch.equal(plain, paired)
    with pytest.raises(ValueError, match="antithetic"):
        replace(base, antithetic=True, n_samples=1)


def test_layer_method_takes_the_same_object_and_delegates():
    model = embedding_model()
    layer = LayerSigmaAttribution(model, model.embeddings)
    options = replace(REFERENCE_OPTIONS, n_steps=6)
    attr = layer.attribute(IDS, target=0, options=options)
    assert attr.shape == (2, 4, 6)
    activations = model.embeddings(IDS).detach()

    def from_activations(x):
        return model.head(torch.tanh(x).mean(1))

    inner = SigmaAttribution(from_activations).attribute(
        activations, target=0, options=options
    )
    assert torch.allclose(attr, inner, atol=1e-6)


def test_options_must_be_sigma_options():
    with pytest.raises(TypeError, match="options"):
        SigmaAttribution(sequence_model()).attribute(INPUTS, options={"n_steps": 3})
    with pytest.raises(ValueError, match="n_steps"):
        SigmaOptions(n_steps=0)  # checked when the object is built
