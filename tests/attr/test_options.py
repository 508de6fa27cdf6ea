"""One options object: ``options=`` next to the flat arguments, which override it."""

from dataclasses import replace

import pytest
import torch

from captum_sigma import (
    REFERENCE_OPTIONS,
    LayerSigmaAttribution,
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


def test_options_object_equals_the_same_flat_arguments():
    sigma = SigmaAttribution(sequence_model())
    options = SigmaOptions(n_steps=7, lr=0.3, seed=4, selection="average")
    by_object = sigma.attribute(INPUTS, options=options)
    by_flat = sigma.attribute(INPUTS, n_steps=7, lr=0.3, seed=4, selection="average")
    assert torch.equal(by_object, by_flat)


def test_flat_arguments_override_the_object():
    sigma = SigmaAttribution(sequence_model())
    short = replace(REFERENCE_OPTIONS, n_steps=5)
    by_object = sigma.attribute(INPUTS, options=short)
    overridden = sigma.attribute(INPUTS, options=REFERENCE_OPTIONS, n_steps=5)
    assert torch.equal(by_object, overridden)
    # an explicit value equal to SigmaOptions' default still overrides the object
    explicit = sigma.attribute(INPUTS, options=short, lr=SigmaOptions.lr)
    assert torch.equal(
        explicit, sigma.attribute(INPUTS, options=replace(short, lr=0.5))
    )


def test_flat_arguments_repeating_the_object_change_nothing():
    sigma = SigmaAttribution(sequence_model())
    flat = ("lr", "n_samples", "scale", "rate", "seed", "selection", "init")
    kwargs = {name: getattr(REFERENCE_OPTIONS, name) for name in flat}
    assert torch.equal(
        sigma.attribute(INPUTS, options=REFERENCE_OPTIONS, n_steps=5, **kwargs),
        sigma.attribute(INPUTS, options=replace(REFERENCE_OPTIONS, n_steps=5)),
    )


def test_antithetic_is_passable_and_changes_the_draws():
    sigma = SigmaAttribution(sequence_model())
    base = SigmaOptions(n_steps=5, n_samples=2, init="constant")
    plain = sigma.attribute(INPUTS, options=base)
    paired = sigma.attribute(INPUTS, options=replace(base, antithetic=True))
    assert not torch.equal(plain, paired)
    with pytest.raises(ValueError, match="antithetic"):
        sigma.attribute(INPUTS, options=replace(base, antithetic=True), n_samples=1)


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
        SigmaAttribution(sequence_model()).attribute(INPUTS, n_steps=0)
