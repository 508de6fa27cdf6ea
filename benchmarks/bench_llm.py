"""Cost of LLMSigmaAttribution against Captum's LLMGradientAttribution(LayerIG).

Same random Llama-style decoder (RMSNorm, rotary, grouped-query attention; hidden
128, 2 layers, vocabulary 1000), same prompts (32 tokens) and targets (1 and 8
tokens). Captum's wrapper runs LayerIntegratedGradients (n_steps=50, its default)
once per output token; LLMSigmaAttribution solves every output token as one row
of a single padded batch, with ``SigmaOptions()`` (the default budget) and with
IG's budget of 50 forward+backward passes per output token (one chain of 23
steps of 2 draws after a 4-probe warm start). Counted per prompt:

* **rows**: sequences through the model (forward+backward, clean passes
  included), by a hook on the input embeddings;
* **tokens**: rows × their length (the compute actually done; Sigma's rows are
  padded to the longest);
* **seconds**: median wall time of interleaved repeats (Sigma, IG, Sigma, IG…).

CPU runs on one thread (``torch.set_num_threads(1)``). On CUDA, ``--dtype bf16`` /
``fp16`` runs both methods with the model in that precision.

    python benchmarks/bench_llm.py [--quick] [--device cuda] [--dtype bf16]

Writes ``benchmarks/results/bench_llm_{cpu,cuda}[_dtype][_quick].json`` with the
machine named.
"""

import argparse
import statistics
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, print_table, save_results, synchronize  # noqa: E402

VOCAB = 1000
PROMPT_TOKENS = 32
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def make_model(device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
    )
    return LlamaForCausalLM(config).to(device=device, dtype=dtype).eval()


def make_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(
        models.WordLevel({f"w{i}": i for i in range(VOCAB)}, unk_token="w0")
    )
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="w0", pad_token="w0"
    )


def prompts(n: int, target_tokens: int) -> List[Any]:
    generator = torch.Generator().manual_seed(target_tokens)
    words = torch.randint(
        1, VOCAB, (n, PROMPT_TOKENS + target_tokens), generator=generator
    )
    return [
        (
            " ".join(f"w{i}" for i in row[:PROMPT_TOKENS].tolist()),
            " ".join(f"w{i}" for i in row[PROMPT_TOKENS:].tolist()),
        )
        for row in words
    ]


def ig_budget() -> Any:
    """50 forward+backward passes per output token, IG's default budget."""
    from dataclasses import fields, replace

    from captum_sigma import SigmaOptions

    pinned = {"n_steps": 23, "n_samples": 2, "chains": 1, "tol": None}
    pinned["control_variate"] = False
    names = {item.name for item in fields(SigmaOptions)}
    return replace(SigmaOptions(), **{k: v for k, v in pinned.items() if k in names})


class Counter:
    """Rows and tokens through the input embeddings."""

    def __init__(self, model: Any) -> None:
        self.rows = 0
        self.tokens = 0
        model.get_input_embeddings().register_forward_pre_hook(self.hook)

    def hook(self, module: Any, args: Any) -> None:
        self.rows += int(args[0].shape[0])
        self.tokens += int(args[0].numel())


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    from captum.attr import (
        LayerIntegratedGradients,
        LLMGradientAttribution,
        TextTokenInput,
    )

    from captum_sigma import LayerSigmaAttribution, LLMSigmaAttribution

    device = torch.device(args.device)
    model = make_model(device, DTYPES[args.dtype])
    tokenizer = make_tokenizer()
    counter = Counter(model)
    embeddings = model.get_input_embeddings()
    sigma = LLMSigmaAttribution(LayerSigmaAttribution(model, embeddings), tokenizer)
    budget = ig_budget()
    methods = {
        "LLMSigmaAttribution (default options)": sigma.attribute,
        "LLMSigmaAttribution (50 passes / token)": partial(
            sigma.attribute, options=budget
        ),
        "LLMGradientAttribution(LayerIG)": LLMGradientAttribution(
            LayerIntegratedGradients(model, embeddings), tokenizer
        ).attribute,
    }
    rows = []
    for target_tokens in args.targets:
        pairs = prompts(args.prompts, target_tokens)
        seconds: Dict[str, List[float]] = {name: [] for name in methods}
        counts: Dict[str, Dict[str, float]] = {}
        for repeat in range(args.repeats + 1):  # repeat 0 warms up
            for name, method in methods.items():
                rows_before, tokens_before = counter.rows, counter.tokens
                synchronize(device)
                start = time.perf_counter()
                for prompt, target in pairs:
                    method(TextTokenInput(prompt, tokenizer), target=target)
                synchronize(device)
                elapsed = (time.perf_counter() - start) / len(pairs)
                if repeat:
                    seconds[name].append(elapsed)
                else:
                    counts[name] = {
                        "rows": (counter.rows - rows_before) / len(pairs),
                        "tokens": (counter.tokens - tokens_before) / len(pairs),
                    }
        ig = statistics.median(seconds["LLMGradientAttribution(LayerIG)"])
        ig_rows = counts["LLMGradientAttribution(LayerIG)"]["rows"]
        for name in methods:
            median = statistics.median(seconds[name])
            rows.append(
                {
                    "target tokens": target_tokens,
                    "method": name,
                    "rows / prompt": counts[name]["rows"],
                    "tokens / prompt": counts[name]["tokens"],
                    "passes / output token": counts[name]["rows"] / target_tokens,
                    "s / prompt": median,
                    "rows vs LayerIG": counts[name]["rows"] / ig_rows,
                    "speed-up vs LayerIG": ig / median,
                    "repeats (s)": [round(s, 4) for s in seconds[name]],
                }
            )
        print(f"done: {target_tokens} target tokens", flush=True)
    return rows


def SigmaOptionsDefault() -> Any:  # noqa: N802 - the class's default options
    from captum_sigma import SigmaOptions

    return SigmaOptions()


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--targets", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 prompt, 1 repeat")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts, args.repeats = 1, 1
        args.targets = args.targets if args.targets != [1, 8] else [1, 4]
    if torch.device(args.device).type == "cpu":
        torch.set_num_threads(1)
        if args.dtype != "fp32":
            parser.error("--dtype bf16/fp16 is for CUDA only")
    rows = run(args)
    columns = [
        "target tokens",
        "method",
        "rows / prompt",
        "passes / output token",
        "tokens / prompt",
        "s / prompt",
        "speed-up vs LayerIG",
    ]
    print_table(rows, columns)
    if args.no_save:
        return 0
    kind = torch.device(args.device).type
    name = f"bench_llm_{kind}" + ("" if args.dtype == "fp32" else f"_{args.dtype}")
    name += "_quick" if args.quick else ""
    path = save_results(
        name,
        {
            "machine": machine(),
            "device": args.device,
            "dtype": args.dtype,
            "prompt_tokens": PROMPT_TOKENS,
            "prompts": args.prompts,
            "repeats": args.repeats,
            "sigma_default_options": asdict(SigmaOptionsDefault()),
            "sigma_budget_options": asdict(ig_budget()),
            "rows": rows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
