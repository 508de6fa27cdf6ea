"""SigmaAttribution follows Captum's attribute contract."""

from dataclasses import replace

import pytest
import torch
from captum.attr import NoiseTunnel
from captum.metrics import infidelity, sensitivity_max
from captum.testing.helpers.basic_models import (
    BasicModel_MultiLayer,
    BasicModel_MultiLayer_MultiInput,
)

from captum_sigma import SigmaAttribution, SigmaOptions

FAST = dict(options=SigmaOptions(n_steps=20, n_samples=2))


def sequence_model(seed=0, dim=8):
    """A small nonlinear model from (B, T, D) embeddings to (B, 3) logits."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(dim, 16),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 5, 3),
    ).eval()


def test_tensor_in_tensor_out_with_group_semantics():
    model = sequence_model()
    x = torch.randn(4, 5, 8)
    attr, sigma = SigmaAttribution(model).attribute(
        x, target=1, return_sigma=True, **FAST
    )
    assert isinstance(attr, torch.Tensor) and attr.shape == x.shape
    assert sigma.shape == (4, 5)
    assert ((sigma > 0) & (sigma < 0.5)).all()
    # every element of position t holds log(scale / σ_t), so a row sum is the score
    expected = torch.log(0.5 / sigma)
    assert torch.allclose(attr, expected.unsqueeze(-1).expand_as(attr), atol=1e-6)
    grouped = SigmaAttribution(model).attribute(
        x, target=1, return_input_shape=False, **FAST
    )
    assert grouped.shape == (4, 5)
    assert torch.allclose(grouped, attr.sum(-1), atol=1e-4)
    assert (grouped >= 0).all()


def test_tuple_inputs_feature_mask_and_additional_args():
    model = BasicModel_MultiLayer_MultiInput().eval()
    x1, x2, x3 = torch.randn(3, 3), torch.randn(3, 3), torch.randn(3, 3)
    mask = (
        torch.tensor([[0, 0, 1]]),
        torch.tensor([[1, 2, 2]]),
        torch.tensor([[3, 3, 3]]),
    )
    attr, sigma = SigmaAttribution(model).attribute(
        (x1, x2),
        target=0,
        additional_forward_args=(x3, 2),
        feature_mask=mask[:2],
        return_sigma=True,
        **FAST,
    )
    assert isinstance(attr, tuple) and len(attr) == 2
    assert attr[0].shape == x1.shape and attr[1].shape == x2.shape
    assert sigma.shape == (3, 3)
    # elements sharing an id share a value, across the tuple too (id 1)
    assert torch.equal(attr[0][:, 0], attr[0][:, 1])
    assert torch.equal(attr[0][:, 2], attr[1][:, 0])
    assert torch.equal(attr[1][:, 1], attr[1][:, 2])
    grouped = SigmaAttribution(model).attribute(
        (x1, x2),
        target=0,
        additional_forward_args=(x3, 2),
        feature_mask=mask[:2],
        return_input_shape=False,
        **FAST,
    )
    sizes = torch.tensor([2.0, 2.0, 2.0])
    assert torch.allclose(grouped, sizes * torch.log(0.5 / sigma), atol=1e-5)


def test_two_dimensional_inputs_get_one_group_per_element():
    model = BasicModel_MultiLayer().eval()
    x = torch.randn(2, 3)
    attr, sigma = SigmaAttribution(model).attribute(
        x, target=0, return_sigma=True, **FAST
    )
    assert attr.shape == (2, 3) and sigma.shape == (2, 3)


def test_noise_tunnel_wraps_sigma():
    model = sequence_model()
    x = torch.randn(2, 5, 8)
    tunnel = NoiseTunnel(SigmaAttribution(model))
    attr = tunnel.attribute(x, nt_samples=2, nt_type="smoothgrad", target=0, **FAST)
    assert attr.shape == x.shape and torch.isfinite(attr).all()


def test_captum_infidelity_and_sensitivity_accept_the_output():
    model = sequence_model()
    x = torch.randn(2, 5, 8)
    explainer = SigmaAttribution(model)
    attr = explainer.attribute(x, target=0, **FAST)

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.01
        return noise, inputs - noise

    value = infidelity(model, perturb, x, attr, target=0)
    assert value.shape == (2,) and torch.isfinite(value).all()
    sens = sensitivity_max(
        explainer.attribute, x, target=0, n_perturb_samples=2, **FAST
    )
    assert sens.shape == (2,) and torch.isfinite(sens).all()


def test_get_name_and_flags():
    explainer = SigmaAttribution(sequence_model())
    assert explainer.get_name() == "Sigma Attribution"
    assert not explainer.has_convergence_delta()
    assert explainer.multiplies_by_inputs is False


def test_seed_controls_the_result():
    model = sequence_model()
    x = torch.randn(2, 5, 8)
    options = FAST["options"]
    a = SigmaAttribution(model).attribute(x, 0, options=replace(options, seed=1))
    b = SigmaAttribution(model).attribute(x, 0, options=replace(options, seed=1))
    c = SigmaAttribution(model).attribute(x, 0, options=replace(options, seed=2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("selection", ["average", "final", "best_loss"])
@pytest.mark.parametrize("init", ["linearized", "constant", "random"])
@pytest.mark.parametrize("optimizer", ["newton", "adam"])
def test_every_selection_init_and_optimizer_runs(selection, init, optimizer):
    model = sequence_model()
    x = torch.randn(2, 5, 8)
    attr = SigmaAttribution(model).attribute(
        x,
        target=0,
        options=SigmaOptions(
            selection=selection, init=init, n_steps=5, optimizer=optimizer
        ),
    )
    assert torch.isfinite(attr).all()
