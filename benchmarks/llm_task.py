"""A key-value recall task and a small causal LM trained on it (the LLM ground truth).

A prompt lists key-value pairs, one token each, and asks for one key's value::

    g7 a6 c4 e3 ; c        ->   4

Keys (``a`` … ``h``) and values (``0`` … ``9``) are drawn without replacement, so
exactly one prompt token, the pair holding the queried key (``c4``), holds the
answer: the *deciding token*, whose position an attribution method should rank
first (hit@1). The queried key (the prompt's last token) is needed too, but it
does not carry the answer. (With key and value as separate tokens, ``a 3 b 7 ; b``,
the model must learn an induction circuit; none formed within a few CPU minutes
of training, for Llama or GPT-2, so the pair is one token.)

The model is a Llama-style decoder (RMSNorm, rotary, grouped-query attention;
2 layers, hidden 64, ~87 k parameters), trained from a fixed seed on one CPU
thread in about 12 s (800 AdamW steps of 64 prompts, loss on the answer token);
it answers 100 % of 1000 held-out prompts, with probabilities near 1 (the
saturated regime). Its weights (~0.35 MB) and word-level tokenizer are cached in
``benchmarks/results/llm_task_model/``; :func:`load_task_model` trains them when
the folder is missing.

    python benchmarks/llm_task.py            # train (or load) and print accuracy
    python benchmarks/llm_task.py --retrain  # train again from the seed
"""

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Tuple

import torch

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
MODEL_DIR = RESULTS / "llm_task_model"

KEYS = list("abcdefgh")
VALUES = [str(v) for v in range(10)]
UNK = "<unk>"  # id 0: padding, and the baseline token of Captum's methods
PAIR_TOKENS = [key + value for key in KEYS for value in VALUES]
WORDS = [UNK, *KEYS, *VALUES, *PAIR_TOKENS, ";"]
PAIRS = (3, 5)  # number of key-value pairs, inclusive range
SEED = 0


@dataclass(frozen=True)
class Example:
    """One recall prompt.

    Attributes:
        prompt: E.g. ``"a 3 b 7 c 1 ; b"``.
        target: The answer, e.g. ``"7"``.
        deciding: Index of the deciding token (the queried pair) in the prompt;
            the queried key is the prompt's last token.
    """

    prompt: str
    target: str
    deciding: int


def make_examples(n: int, seed: int) -> List[Example]:
    """``n`` prompts from a seeded generator (no global state)."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        count = rng.randint(*PAIRS)
        keys = rng.sample(KEYS, count)
        values = rng.sample(VALUES, count)
        asked = rng.randrange(count)
        tokens = [key + value for key, value in zip(keys, values)]
        tokens += [";", keys[asked]]
        examples.append(Example(" ".join(tokens), values[asked], asked))
    return examples


def make_tokenizer() -> Any:
    """A word-level tokenizer over :data:`WORDS` (no special tokens added)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(
        models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token=UNK)
    )
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token=UNK, pad_token=UNK
    )


def make_model(seed: int = SEED) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def encode(tokenizer: Any, examples: List[Example]) -> Tuple[torch.Tensor, ...]:
    """Right-padded ids of ``prompt + target``, mask, and the answer's position."""
    rows = [tokenizer.encode(f"{e.prompt} {e.target}") for e in examples]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    answer = mask.sum(1) - 1
    return ids, mask, answer


def accuracy(model: Any, tokenizer: Any, examples: List[Example]) -> float:
    ids, mask, answer = encode(tokenizer, examples)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    rows = torch.arange(len(examples))
    predicted = logits[rows, answer - 1].argmax(-1)
    return float((predicted == ids[rows, answer]).float().mean())


def train(
    steps: int = 800, batch: int = 64, lr: float = 3e-3, seed: int = SEED
) -> Tuple[Any, Any, dict]:
    """Trains the recall model from ``seed`` (one thread, deterministic)."""
    torch.set_num_threads(1)
    tokenizer = make_tokenizer()
    model = make_model(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=steps, pct_start=0.1
    )
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        ids, mask, answer = encode(tokenizer, make_examples(batch, seed * 7919 + step))
        logits = model(input_ids=ids, attention_mask=mask).logits
        rows = torch.arange(batch)
        loss = torch.nn.functional.cross_entropy(
            logits[rows, answer - 1], ids[rows, answer]
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    model.eval()
    seconds = time.perf_counter() - start
    log = {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "test_accuracy": accuracy(model, tokenizer, make_examples(1000, 10**6)),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model, tokenizer, log


def load_task_model(retrain: bool = False) -> Tuple[Any, Any, dict]:
    """The trained model (eval mode), its tokenizer and its training log."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log_path = MODEL_DIR / "training.json"
    if retrain or not log_path.is_file():
        model, tokenizer, log = train()
        MODEL_DIR.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(MODEL_DIR)
        tokenizer.save_pretrained(MODEL_DIR)
        log_path.write_text(json.dumps(log, indent=2) + "\n")
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR, local_files_only=True)
    return model.eval(), tokenizer, json.loads(log_path.read_text())


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    _, _, log = load_task_model(retrain=args.retrain)
    print(json.dumps(log, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
