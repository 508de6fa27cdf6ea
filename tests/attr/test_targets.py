"""Row i of a batched call equals example i alone (Captum's targets test)."""

import torch
from captum.testing.helpers.basic_models import (
    BasicModel_MultiLayer,
    BasicModel_MultiLayer_MultiInput,
)

from captum_sigma import LayerSigmaAttribution, SigmaAttribution, SigmaOptions

FAST = dict(options=SigmaOptions(n_steps=30, n_samples=2))


def test_per_example_targets_on_basic_model():
    model = BasicModel_MultiLayer().eval()
    x = torch.randn(4, 3) * 3
    targets = [0, 1, 1, 0]
    batched = SigmaAttribution(model).attribute(x, target=targets, **FAST)
    for i, target in enumerate(targets):
        single = SigmaAttribution(model).attribute(x[i : i + 1], target=target, **FAST)
        assert torch.allclose(batched[i], single[0], atol=1e-4)


def test_tensor_targets_tuple_inputs_and_internal_batch_size():
    model = BasicModel_MultiLayer_MultiInput().eval()
    x1, x2, x3 = (torch.randn(5, 3) for _ in range(3))
    targets = torch.tensor([0, 1, 1, 0, 1])
    full = SigmaAttribution(model).attribute(
        (x1, x2), target=targets, additional_forward_args=(x3, 2), **FAST
    )
    chunked = SigmaAttribution(model).attribute(
        (x1, x2),
        target=targets,
        additional_forward_args=(x3, 2),
        internal_batch_size=4,
        **FAST,
    )
    for a, b in zip(full, chunked):
        assert torch.allclose(a, b, atol=1e-4)
    for i in range(5):
        single = SigmaAttribution(model).attribute(
            (x1[i : i + 1], x2[i : i + 1]),
            target=int(targets[i]),
            additional_forward_args=(x3[i : i + 1], 2),
            **FAST,
        )
        for a, b in zip(full, single):
            assert torch.allclose(a[i], b[0], atol=1e-4)


def test_tiny_bert_with_padding_equals_unpadded_single_examples(tiny_bert, padded_ids):
    ids, mask = padded_ids
    explainer = LayerSigmaAttribution(
        lambda i, m: tiny_bert(input_ids=i, attention_mask=m).logits,
        tiny_bert.bert.embeddings,
    )
    targets = torch.tensor([0, 1, 1])
    batched, sigma = explainer.attribute(
        ids,
        target=targets,
        additional_forward_args=(mask,),
        token_mask=mask,
        return_sigma=True,
        **FAST,
    )
    for i in range(3):
        length = int(mask[i].sum())
        single, single_sigma = explainer.attribute(
            ids[i : i + 1, :length],
            target=int(targets[i]),
            additional_forward_args=(mask[i : i + 1, :length],),
            token_mask=mask[i : i + 1, :length],
            return_sigma=True,
            **FAST,
        )
        assert torch.allclose(batched[i, :length], single[0], atol=1e-4)
        assert torch.allclose(sigma[i, :length], single_sigma[0], atol=1e-4)
        # padded positions are never scored
        assert (batched[i, length:] == 0).all()
        assert torch.isnan(sigma[i, length:]).all()


def test_hidden_state_with_padding_masks_the_loss(tiny_bert, padded_ids):
    """Explaining a per-token hidden state: padded outputs stay out of the loss."""
    ids, mask = padded_ids
    explainer = LayerSigmaAttribution(
        lambda i, m: tiny_bert.bert(input_ids=i, attention_mask=m).last_hidden_state,
        tiny_bert.bert.embeddings,
    )
    batched = explainer.attribute(
        ids,
        additional_forward_args=(mask,),
        token_mask=mask,
        return_input_shape=False,
        **FAST,
    )
    for i in range(3):
        length = int(mask[i].sum())
        single = explainer.attribute(
            ids[i : i + 1, :length],
            additional_forward_args=(mask[i : i + 1, :length],),
            token_mask=mask[i : i + 1, :length],
            return_input_shape=False,
            **FAST,
        )
        assert torch.allclose(batched[i, :length], single[0], atol=1e-4)
