"""No side effects: grads, modes, flags, hooks, RNG, no_grad callers."""

from dataclasses import replace

import pytest
import torch
from captum.testing.helpers.basic_models import BasicModel_MultiLayer

from captum_sigma import LayerSigmaAttribution, SigmaAttribution, SigmaOptions

FAST = dict(options=SigmaOptions(n_steps=5, n_samples=2))


def all_hooks(model):
    return [
        hooks
        for module in model.modules()
        for hooks in (
            module._forward_hooks,
            module._forward_pre_hooks,
            module._backward_hooks,
            getattr(module, "_backward_pre_hooks", {}),
        )
        if len(hooks)
    ]


def layer_explainer(model):
    return LayerSigmaAttribution(
        lambda i, m: model(input_ids=i, attention_mask=m).logits,
        model.bert.embeddings,
    )


def test_no_grads_modes_flags_or_rng_touched(tiny_bert, padded_ids):
    ids, mask = padded_ids
    tiny_bert.bert.encoder.layer[0].requires_grad_(False)
    tiny_bert.bert.encoder.layer[1].train()
    flags = {n: p.requires_grad for n, p in tiny_bert.named_parameters()}
    modes = {n: m.training for n, m in tiny_bert.named_modules()}
    tiny_bert.bert.encoder.layer[1].attention.self.dropout.p = 0.0
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    layer_explainer(tiny_bert).attribute(
        ids, target=0, additional_forward_args=(mask,), token_mask=mask, **FAST
    )
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in tiny_bert.parameters())
    assert flags == {n: p.requires_grad for n, p in tiny_bert.named_parameters()}
    assert modes == {n: m.training for n, m in tiny_bert.named_modules()}
    assert not all_hooks(tiny_bert)


def test_result_does_not_depend_on_global_rng(tiny_bert, padded_ids):
    ids, mask = padded_ids
    explainer = layer_explainer(tiny_bert)
    kwargs = dict(target=0, additional_forward_args=(mask,), token_mask=mask, **FAST)
    torch.manual_seed(1)
    kwargs["options"] = replace(kwargs["options"], init="random")
    a = explainer.attribute(ids, **kwargs)
    torch.manual_seed(2)
    b = explainer.attribute(ids, **kwargs)
    assert torch.equal(a, b)


def test_works_under_no_grad(tiny_bert, padded_ids):
    ids, mask = padded_ids
    with torch.no_grad():
        attr = layer_explainer(tiny_bert).attribute(
            ids, target=1, additional_forward_args=(mask,), token_mask=mask, **FAST
        )
    assert torch.isfinite(attr).all() and attr.abs().sum() > 0


def test_hooks_removed_after_normal_call_and_malformed_target(tiny_bert, padded_ids):
    ids, mask = padded_ids
    explainer = layer_explainer(tiny_bert)
    explainer.attribute(
        ids,
        target=0,
        additional_forward_args=(mask,),
        token_mask=mask,
        explained_layer=tiny_bert.bert.encoder.layer[0],
        **FAST,
    )
    assert not all_hooks(tiny_bert)
    with pytest.raises(AssertionError):
        explainer.attribute(ids, target=(7, 3), additional_forward_args=(mask,), **FAST)
    assert not all_hooks(tiny_bert)
    with pytest.raises(AssertionError):
        explainer.attribute(ids, target=[0, 1], additional_forward_args=(mask,), **FAST)
    assert not all_hooks(tiny_bert)


class RaisingLayer(torch.nn.Module):
    def forward(self, *args):
        raise RuntimeError("layer failure")


def test_hooks_removed_when_a_layer_raises(tiny_bert, padded_ids):
    ids, mask = padded_ids
    tiny_bert.bert.encoder.layer[1].output = RaisingLayer()
    with pytest.raises(RuntimeError, match="layer failure"):
        layer_explainer(tiny_bert).attribute(
            ids, target=0, additional_forward_args=(mask,), **FAST
        )
    assert not all_hooks(tiny_bert)


def test_hooks_removed_when_the_layer_raises_during_optimisation():
    model = BasicModel_MultiLayer().eval()
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("flaky forward")
        return model(x)

    with pytest.raises(RuntimeError, match="flaky"):
        LayerSigmaAttribution(flaky, model.linear1).attribute(
            torch.randn(2, 3), target=0, **FAST
        )
    assert not all_hooks(model)


def test_input_level_no_side_effects_and_training_warning():
    model = torch.nn.Sequential(BasicModel_MultiLayer(), torch.nn.Dropout(0.1))
    model.train()
    with pytest.warns(UserWarning, match="training mode"):
        SigmaAttribution(model).attribute(torch.randn(2, 3), target=0, **FAST)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
