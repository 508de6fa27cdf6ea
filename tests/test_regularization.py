"""estimate_regularization: the per-element std of the explained output."""

import torch

from captum_sigma import (
    LayerSigmaAttribution,
    SigmaOptions,
    estimate_regularization,
    load_regularization,
    save_regularization,
)


def hidden_states(model):
    return lambda i, m: model.bert(input_ids=i, attention_mask=m).last_hidden_state


def test_std_over_real_tokens_of_every_sentence(tiny_bert, padded_ids):
    ids, mask = padded_ids
    forward = hidden_states(tiny_bert)
    halves = [
        {
            "inputs": ids[:2],
            "additional_forward_args": (mask[:2],),
            "token_mask": mask[:2],
        },
        {
            "inputs": ids[2:],
            "additional_forward_args": (mask[2:],),
            "token_mask": mask[2:],
        },
    ]
    r = estimate_regularization(forward, halves)
    with torch.no_grad():
        hidden = forward(ids, mask)
    real = hidden[mask.bool()]
    assert r.shape == (32,)
    assert torch.allclose(r, real.std(0, unbiased=False), atol=1e-5)
    # padding changes the estimate if it is not excluded
    assert not torch.allclose(
        r, hidden.reshape(-1, 32).std(0, unbiased=False), atol=1e-3
    )


def test_pooled_output_and_explained_layer(tiny_bert, padded_ids):
    ids, mask = padded_ids
    logits = estimate_regularization(
        lambda i, m: tiny_bert(input_ids=i, attention_mask=m).logits,
        [{"inputs": ids, "additional_forward_args": (mask,)}],
    )
    assert logits.shape == (2,)
    layer = tiny_bert.bert.encoder.layer[0]
    r = estimate_regularization(
        lambda i, m: tiny_bert(input_ids=i, attention_mask=m).logits,
        [{"inputs": ids, "additional_forward_args": (mask,), "token_mask": mask}],
        explained_layer=layer,
    )
    captured = []
    handle = layer.register_forward_hook(lambda mod, inp, out: captured.append(out))
    with torch.no_grad():
        tiny_bert(input_ids=ids, attention_mask=mask)
    handle.remove()
    hidden = captured[0][0] if isinstance(captured[0], tuple) else captured[0]
    assert torch.allclose(r, hidden[mask.bool()].std(0, unbiased=False), atol=1e-5)


def test_save_load_and_reuse(tmp_path, tiny_bert, padded_ids):
    ids, mask = padded_ids
    forward = hidden_states(tiny_bert)
    r = estimate_regularization(
        forward,
        [{"inputs": ids, "additional_forward_args": (mask,), "token_mask": mask}],
    )
    path = tmp_path / "r.safetensors"
    save_regularization(r, path)
    loaded = load_regularization(path)
    assert torch.equal(loaded, r)
    explainer = LayerSigmaAttribution(forward, tiny_bert.bert.embeddings)
    kwargs = dict(
        additional_forward_args=(mask,),
        token_mask=mask,
        options=SigmaOptions(n_steps=5),
    )
    a = explainer.attribute(ids, regularization=r, **kwargs)
    b = explainer.attribute(ids, regularization=loaded, **kwargs)
    assert torch.equal(a, b)
    # r makes scores comparable across sentences: the same sentence scores the
    # same alone and beside others, unlike self-normalisation by its own mean s²
    single = explainer.attribute(
        ids[:1],
        regularization=r,
        additional_forward_args=(mask[:1],),
        token_mask=mask[:1],
        options=SigmaOptions(n_steps=5),
    )
    assert torch.allclose(a[:1], single, atol=1e-4)
