"""LayerSigmaAttribution: layer shapes, explained layers, Captum's LLM wrapper."""

import pytest
import torch
from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput
from captum.testing.helpers.basic_models import BasicEmbeddingModel

from captum_sigma import LayerSigmaAttribution, SigmaAttribution, SigmaOptions

FAST = dict(options=SigmaOptions(n_steps=20, n_samples=2))


def test_layer_shapes_and_per_token_scores(tiny_bert, padded_ids):
    ids, mask = padded_ids
    explainer = LayerSigmaAttribution(
        lambda i, m: tiny_bert(input_ids=i, attention_mask=m).logits,
        tiny_bert.bert.embeddings,
    )
    attr = explainer.attribute(
        ids, target=1, additional_forward_args=(mask,), token_mask=mask, **FAST
    )
    assert attr.shape == (3, 10, 32)
    scores = explainer.attribute(
        ids,
        target=1,
        additional_forward_args=(mask,),
        token_mask=mask,
        return_input_shape=False,
        **FAST,
    )
    assert scores.shape == (3, 10)
    assert torch.allclose(attr.sum(-1), scores, atol=1e-4)


class EmbeddingClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embeddings = torch.nn.Embedding(20, 8)
        self.mix = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 3)

    def from_embeddings(self, embeddings, mask):
        hidden = torch.tanh(self.mix(embeddings)) * mask.unsqueeze(-1)
        return self.head(hidden.sum(1))

    def forward(self, ids, mask):
        return self.from_embeddings(self.embeddings(ids), mask)


def test_layer_equals_input_level_sigma_on_the_embeddings(padded_ids):
    """Perturbing the embedding layer's output = SigmaAttribution on its output."""
    ids, mask = padded_ids
    ids = ids % 20
    model = EmbeddingClassifier().eval()
    targets = [0, 2, 1]
    layer = LayerSigmaAttribution(model, model.embeddings).attribute(
        ids, target=targets, additional_forward_args=(mask,), token_mask=mask, **FAST
    )
    with torch.no_grad():
        embeddings = model.embeddings(ids)
    direct = SigmaAttribution(model.from_embeddings).attribute(
        embeddings,
        target=targets,
        additional_forward_args=(mask,),
        token_mask=mask,
        **FAST,
    )
    assert torch.allclose(layer, direct, atol=1e-5)


def test_explained_layer_stops_the_forward(tiny_bert, padded_ids):
    ids, mask = padded_ids
    calls = []
    tiny_bert.bert.encoder.layer[1].register_forward_hook(lambda *args: calls.append(1))
    explainer = LayerSigmaAttribution(
        lambda i, m: tiny_bert(input_ids=i, attention_mask=m).logits,
        tiny_bert.bert.embeddings,
    )
    scores = explainer.attribute(
        ids,
        additional_forward_args=(mask,),
        token_mask=mask,
        explained_layer=tiny_bert.bert.encoder.layer[0],
        return_input_shape=False,
        **FAST,
    )
    assert scores.shape == (3, 10)
    # only the activation capture runs the whole model; the sigma passes stop early
    assert len(calls) == 1


def test_attribute_to_layer_input_equals_previous_layer_output(padded_ids):
    ids, mask = padded_ids
    ids = ids % 20
    model = EmbeddingClassifier().eval()
    kwargs = dict(target=1, additional_forward_args=(mask,), token_mask=mask, **FAST)
    output_level = LayerSigmaAttribution(model, model.embeddings).attribute(
        ids, **kwargs
    )
    input_level = LayerSigmaAttribution(model, model.mix).attribute(
        ids, attribute_to_layer_input=True, **kwargs
    )
    assert output_level.shape == input_level.shape == (3, 10, 8)
    assert torch.allclose(output_level, input_level, atol=1e-5)


def test_basic_embedding_model_with_tuple_inputs_and_batch_invariance():
    model = BasicEmbeddingModel().eval()
    ids1 = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    ids2 = torch.tensor([[3, 2, 1], [6, 5, 4], [9, 8, 7]])
    explainer = LayerSigmaAttribution(model, model.embedding1)
    batched = explainer.attribute((ids1, ids2), target=0, **FAST)
    assert batched.shape == (3, 3, 100)
    for i in range(3):
        single = explainer.attribute(
            (ids1[i : i + 1], ids2[i : i + 1]), target=0, **FAST
        )
        assert torch.allclose(batched[i], single[0], atol=1e-4)


class LLMSigmaAttribution(LLMGradientAttribution):
    """Captum's LLM wrapper hosting sigma through its SUPPORTED_METHODS."""

    SUPPORTED_METHODS = LLMGradientAttribution.SUPPORTED_METHODS + (
        LayerSigmaAttribution,
    )


def test_llm_gradient_attribution_hosts_layer_sigma():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=2, n_positions=32)
    ).eval()

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(50)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="w0")
    wrapper = LLMSigmaAttribution(
        LayerSigmaAttribution(model, model.transformer.wte), tokenizer
    )
    result = wrapper.attribute(
        TextTokenInput("w3 w7 w11 w5", tokenizer), target="w9 w4", **FAST
    )
    assert result.token_attr.shape == (2, 4)
    assert result.seq_attr.shape == (4,)
    assert torch.isfinite(result.token_attr).all()
    assert (result.token_attr >= 0).all()
    # the same wrapper accepts Captum's own layer method
    ig = LLMSigmaAttribution(
        LayerIntegratedGradients(model, model.transformer.wte), tokenizer
    )
    assert ig.attribute(
        TextTokenInput("w3 w7 w11 w5", tokenizer), target="w9 w4"
    ).seq_attr.shape == (4,)


def test_explained_layer_before_the_perturbed_layer_is_refused(tiny_bert, padded_ids):
    """Nothing downstream of the perturbation: every score would silently be 0."""
    ids, mask = padded_ids
    sigma = LayerSigmaAttribution(
        lambda i, m: tiny_bert(input_ids=i, attention_mask=m).logits,
        tiny_bert.bert.encoder.layer[1],
    )
    with pytest.raises(ValueError, match="explained_layer runs before"):
        sigma.attribute(
            ids,
            additional_forward_args=(mask,),
            token_mask=mask,
            options=SigmaOptions(n_steps=2),
            explained_layer=tiny_bert.bert.encoder.layer[0],
        )
