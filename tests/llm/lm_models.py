"""Tiny causal language models and a word-level tokenizer, built offline."""

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

VOCAB = 40
#: Weight std of the random models: larger than Hugging Face's 0.02 so that the
#: next-token output depends clearly on the tokens (not a near-uniform softmax).
INIT = 0.2


def make_tokenizer(padding_side: str = "right"):
    """Words ``w0 … w39`` (``w0`` unknown/padding) plus ``<b>``, split on spaces."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(VOCAB - 1)}
    vocab["<b>"] = VOCAB - 1  # a token that is markup if not escaped
    backend = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="w0",
        pad_token="w0",
        padding_side=padding_side,
    )


def make_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        initializer_range=INIT,
    )
    return GPT2LMHeadModel(config).eval()


def make_llama(seed: int = 0):
    """Llama-style: RMSNorm, rotary, grouped-query attention (4 heads, 2 KV)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        initializer_range=INIT,
    )
    return LlamaForCausalLM(config).eval()


def make_qwen2(seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        initializer_range=INIT,
    )
    return Qwen2ForCausalLM(config).eval()


MODELS = {"gpt2": make_gpt2, "llama": make_llama, "qwen2": make_qwen2}


class WindowLM(nn.Module):
    """A causal LM whose output at position t reads only tokens t − 1 and t:
    every earlier token is ignored, every later one is causally after it."""

    def __init__(self, dim: int = 16, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(VOCAB, dim)
        self.current = nn.Linear(dim, dim)
        self.previous = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, VOCAB)

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def get_output_embeddings(self) -> nn.Module:
        return self.head

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        x = self.embed(input_ids)
        shifted = torch.nn.functional.pad(x, (0, 0, 1, 0))[:, :-1]
        hidden = torch.tanh(self.current(x) + self.previous(shifted))
        return CausalLMOutput(logits=self.head(hidden))
