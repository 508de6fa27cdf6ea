"""Bad input raises a clear exception naming the argument, and changes nothing."""

import os
import subprocess
import sys
from dataclasses import fields

import pytest
import torch

from captum_sigma import LayerSigmaAttribution, SigmaAttribution, SigmaOptions
from captum_sigma.attr import TargetError


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 3),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(6, 2),
    ).eval()


X = torch.randn(2, 2, 4)
OPTION_FIELDS = {item.name for item in fields(SigmaOptions)}


def call(**kwargs):
    net = kwargs.pop("net", None) or model()
    inputs = kwargs.pop("inputs", X)
    given = {name: kwargs.pop(name) for name in OPTION_FIELDS & set(kwargs)}
    kwargs["options"] = SigmaOptions(**{"n_steps": 2, **given})
    return SigmaAttribution(net).attribute(inputs, **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(inputs=torch.full((2, 2, 4), float("nan"))), ValueError, "NaN"),
        (dict(inputs=torch.full((2, 2, 4), float("inf"))), ValueError, "Inf"),
        (dict(inputs=torch.randn(0, 2, 4)), ValueError, "empty batch"),
        (dict(inputs=[1.0, 2.0]), TypeError, "inputs"),
        (
            dict(inputs=torch.ones(2, 2, 4, dtype=torch.long)),
            TypeError,
            "LayerSigmaAttribution",
        ),
        (
            dict(feature_mask=torch.zeros(2, 3, dtype=torch.long)),
            ValueError,
            "feature_mask",
        ),
        (
            dict(feature_mask=torch.zeros(3, 2, 4, dtype=torch.long)),
            ValueError,
            "feature_mask",
        ),
        (dict(feature_mask=torch.zeros(2, 2, 4)), TypeError, "feature_mask"),
        (dict(scale=0.0), ValueError, "scale"),
        (dict(scale=-1.0), ValueError, "scale"),
        (dict(rate=0), ValueError, "rate"),
        (dict(lr=-0.1), ValueError, "lr"),
        (dict(lr=float("nan")), ValueError, "lr"),
        (dict(n_steps=0), ValueError, "n_steps"),
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(n_samples=1.5), TypeError, "n_samples"),
        (dict(selection="best"), ValueError, "selection"),
        (dict(optimizer="sgd"), ValueError, "optimizer"),
        (dict(init="zeros"), ValueError, "init"),
        (dict(regularization=torch.ones(3)), ValueError, "regularization"),
        (dict(regularization=torch.ones(2, 2, 2)), ValueError, "regularization"),
        (dict(regularization=-torch.ones(2)), ValueError, "regularization"),
        (dict(regularization="big"), TypeError, "regularization"),
        (dict(internal_batch_size=0), ValueError, "internal_batch_size"),
        (dict(token_mask=torch.ones(3, 2)), ValueError, "token_mask"),
        (dict(net=lambda x: [x]), TypeError, "must return a Tensor"),
        (dict(net=lambda x: x.sum()), ValueError, "batch dimension"),
        (dict(net=lambda x: x.sum((1, 2))[:1]), ValueError, "batch dimension"),
    ],
)
def test_bad_input_raises_and_names_the_argument(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        call(**kwargs)


@pytest.mark.parametrize(
    "target", [5, [0, 1, 1], torch.tensor([0, 1, 0]), (0, 1, 2, 3), "class"]
)
def test_malformed_targets_raise_value_error_that_is_captums_assertion(target):
    """A ValueError (the argument is the caller's) that is also the AssertionError
    Captum raises for a malformed target."""
    with pytest.raises(TargetError, match="target") as info:
        call(target=target)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, AssertionError)


#: Bad targets under ``python -O``, which strips ``assert`` statements.
OPTIMIZED_SCRIPT = """
import sys, torch
from captum_sigma import SigmaAttribution, SigmaOptions
assert False, "not run: -O strips this"
net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 2))
sigma = SigmaAttribution(net)
x = torch.randn(2, 2, 4)
for target in ([0, 1, 1], torch.tensor([0, 1, 0]), 5):
    try:
        sigma.attribute(x, target=target, options=SigmaOptions(n_steps=2))
    except ValueError as error:
        print(type(error).__name__, "target" in str(error))
    else:
        print("no error")
"""


def test_malformed_targets_raise_under_python_optimize():
    completed = subprocess.run(
        [sys.executable, "-O", "-c", OPTIMIZED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split("\n")[:3] == ["TargetError True"] * 3


def test_zero_regularization_entries_use_epsilon_not_nan():
    attr, sigma = call(regularization=torch.tensor([1.0, 0.0]), return_sigma=True)
    assert torch.isfinite(attr).all() and torch.isfinite(sigma).all()


def test_constant_output_without_regularization_is_finite():
    attr = call(net=lambda x: torch.zeros(x.shape[0], 3))
    assert torch.isfinite(attr).all()


def test_inputs_are_not_modified():
    inputs = X.clone()
    call(inputs=inputs, target=0)
    assert torch.equal(inputs, X)


def test_layer_rejects_integer_layer_output_and_bad_explained_layer():
    embedding = torch.nn.Embedding(10, 4)
    net = torch.nn.Sequential(embedding, torch.nn.Flatten(), torch.nn.Linear(12, 2))
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(TypeError, match="explained_layer"):
        LayerSigmaAttribution(net, embedding).attribute(ids, explained_layer="layer3")
    with pytest.raises(ValueError, match="explained_layer"):
        LayerSigmaAttribution(net, embedding).attribute(
            ids, options=SigmaOptions(n_steps=2), explained_layer=torch.nn.Linear(2, 2)
        )
    identity = torch.nn.Identity()
    net_ids = torch.nn.Sequential(
        identity, embedding, torch.nn.Flatten(), torch.nn.Linear(12, 2)
    )
    with pytest.raises(ValueError, match="not floating"):
        LayerSigmaAttribution(net_ids, identity).attribute(
            ids, options=SigmaOptions(n_steps=2)
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_inputs_and_model_on_different_devices():
    with pytest.raises(ValueError, match="same device"):
        call(net=model().cuda())


def test_inputs_and_model_on_different_devices_meta():
    """The check runs on any device pair; the meta device stands in for a GPU."""
    with pytest.raises(ValueError, match="same device"):
        call(net=model().to("meta"))
