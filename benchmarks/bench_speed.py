"""Speed of sigma against the reference loop and LayerIntegratedGradients.

One run, one machine, side by side: (a) the reference implementation's one-sentence
loop (5000 steps, one noise draw each, noise from the global RNG on the CPU, a
``loss.backward()`` that also fills the model's weight gradients; timed over a few
hundred steps and extrapolated to 5000), (b) LayerIntegratedGradients with
n_steps=50, (c) LayerSigmaAttribution with its defaults, (d) other sigma settings.
A BERT classifier with random weights (bert-base shape in the full mode), token
lengths mixed between 8 and 48 with padding and attention mask, batches 1, 64 and
256, in fp32, TF32 and bf16 autocast (σ and the loss stay in fp32).

    python benchmarks/bench_speed.py --quick      # CPU smoke run, tiny model
    python benchmarks/bench_speed.py              # full run (GPU)
    python benchmarks/bench_speed.py --default-model   # the default model, CPU 1 thread

Prints a table and writes benchmarks/results/bench_speed_<device>.json.

``--default-model`` times the packaged MiniLM classifier's predicted-class logit
divided by ``r`` (the previous TextExplainer default,
``TextExplainer.default(output="logit")``; ``r`` from the default data sample, as the
explainer estimates it), perturbed at ``model.bert.embeddings``, on the
first 16 Rotten Tomatoes test sentences (``rotten_tomatoes_split("test")[:16]``) at
batches 1, 8 and 32 (a batch of 32 is the 16 sentences twice). Sigma with its defaults,
sigma with the old sequential layout ``previous(n_steps=46, n_samples=1)`` (same 50
passes) and LayerIntegratedGradients(n_steps=50; baseline: [PAD] ids with [CLS], [SEP]
and the padding kept, target the predicted class) run interleaved, every repeat in the
same order, so all see the same machine state; the ratio Sigma / IG is taken per repeat
and its median is reported. Writes bench_speed_default_model_<device>.json.
"""

import argparse
import contextlib
import math
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients
from transformers import BertConfig, BertForSequenceClassification

from captum_sigma import LayerSigmaAttribution, SigmaOptions
from captum_sigma.engine import PREVIOUS_DEFAULT_OPTIONS

from _common import (
    machine,
    pad_baseline,
    peak_memory_mb,
    print_table,
    reset_peak_memory,
    save_results,
    timed,
)


def previous(**changes: Any) -> SigmaOptions:
    """The single-chain solver this benchmark measured (``PREVIOUS_DEFAULT_OPTIONS``)
    with ``changes``; keeps its tables' settings what they were."""
    return replace(PREVIOUS_DEFAULT_OPTIONS, **changes)


BERT_BASE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
)
TINY = dict(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
)


def build_model(config: Dict[str, int], device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=30522, max_position_embeddings=512, num_labels=2, **config
        )
    )
    return model.to(device).eval()


def make_batch(batch: int, device: torch.device, seed: int = 0):
    """Random token ids, lengths uniform in 8..48, right-padded, [CLS] … [SEP]."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, 49, (batch,), generator=generator)
    width = int(lengths.max())
    ids = torch.randint(1000, 30000, (batch, width), generator=generator)
    positions = torch.arange(width).unsqueeze(0)
    mask = (positions < lengths.unsqueeze(1)).long()
    ids = ids * mask
    ids[:, 0] = 101
    ids[torch.arange(batch), lengths - 1] = 102
    return ids.to(device), mask.to(device)


def precision_context(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def forward_for(model, precision: str, device: torch.device) -> Callable:
    def forward(ids, mask):
        with precision_context(precision, device):
            return model(input_ids=ids, attention_mask=mask).logits.float()

    return forward


def reference_loop_step_time(model, precision, device, n_steps: int) -> float:
    """Seconds per step of the reference's one-sentence loop."""
    ids, mask = make_batch(1, device, seed=1)
    embeddings = model.bert.embeddings
    with torch.no_grad():
        x = embeddings(input_ids=ids)
    forward = forward_for(model, precision, device)
    state: Dict[str, torch.Tensor] = {}

    def replace(module, inputs, output):
        return state["x"]

    with torch.no_grad():
        s = forward(ids, mask)
    rho = torch.randn(x.shape[1], device=device).requires_grad_(True)
    optimizer = torch.optim.Adam([rho], lr=0.01)
    handle = embeddings.register_forward_hook(replace)

    def loop():
        best = math.inf
        for _ in range(n_steps):
            optimizer.zero_grad()
            noise = torch.randn(x.shape).to(device)  # reference: CPU global RNG
            sigma = 0.5 * torch.sigmoid(rho)
            state["x"] = x + sigma.reshape(1, -1, 1) * noise
            out = forward(ids, mask)
            loss = ((out - s) ** 2).mean() / (s**2).mean()
            loss = loss - 0.1 * torch.log(torch.sigmoid(rho)).mean()
            loss.backward()  # the reference also fills the weights' .grad
            optimizer.step()
            if loss.item() < best:
                best = loss.item()

    try:
        loop_seconds = timed(loop, device)
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    return loop_seconds / n_steps


def ig_seconds(model, precision, device, ids, mask, internal_batch_size) -> float:
    ig = LayerIntegratedGradients(
        forward_for(model, precision, device), model.bert.embeddings
    )
    baseline = torch.where((ids == 101) | (ids == 102), ids, torch.zeros_like(ids))
    return timed(
        lambda: ig.attribute(
            ids,
            baselines=baseline,
            target=1,
            additional_forward_args=(mask,),
            n_steps=50,
            internal_batch_size=internal_batch_size,
        ),
        device,
    )


def sigma_seconds(model, precision, device, ids, mask, options, internal_batch_size):
    sigma = LayerSigmaAttribution(
        forward_for(model, precision, device), model.bert.embeddings
    )
    return timed(
        lambda: sigma.attribute(
            ids,
            target=1,
            additional_forward_args=(mask,),
            token_mask=mask,
            internal_batch_size=internal_batch_size,
            options=options,
        ),
        device,
    )


def sigma_settings(quick: bool) -> Dict[str, SigmaOptions]:
    settings = {
        "sigma previous default (1 chain, 4 + 23 x 2)": previous(),
        "sigma adam 8 VJPs + 50 x 1 (old default)": previous(
            warm_start_probes=8, n_steps=50, lr=0.05, optimizer="adam"
        ),
        "sigma 100 steps x 2 draws": previous(
            n_steps=100, n_samples=2, init="constant"
        ),
    }
    return settings


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    device = torch.device(args.device)
    model = build_model(TINY if args.quick else BERT_BASE, device)
    precisions = (
        ["fp32"] if args.quick or device.type == "cpu" else ["fp32", "tf32", "bf16"]
    )
    rows: List[Dict[str, Any]] = []
    for precision in precisions:
        set_tf32(precision == "tf32")
        reset_peak_memory(device)
        step = reference_loop_step_time(model, precision, device, args.reference_steps)
        rows.append(
            dict(
                precision=precision,
                method="reference loop",
                batch=1,
                seconds_per_sentence=step * 5000,
                passes_per_sentence=5000,
                peak_mb=peak_memory_mb(device),
                note=f"{args.reference_steps} steps timed, x5000",
            )
        )
        for batch in args.batches:
            ids, mask = make_batch(batch, device)
            reset_peak_memory(device)
            seconds = ig_seconds(model, precision, device, ids, mask, args.ig_rows)
            rows.append(
                dict(
                    precision=precision,
                    method="LayerIG n_steps=50",
                    batch=batch,
                    seconds_per_sentence=seconds / batch,
                    passes_per_sentence=50,
                    peak_mb=peak_memory_mb(device),
                )
            )
            for name, options in sigma_settings(args.quick).items():
                reset_peak_memory(device)
                seconds = sigma_seconds(
                    model, precision, device, ids, mask, options, args.sigma_rows
                )
                rows.append(
                    dict(
                        precision=precision,
                        method=name,
                        batch=batch,
                        seconds_per_sentence=seconds / batch,
                        passes_per_sentence=options.passes_per_example(),
                        peak_mb=peak_memory_mb(device),
                    )
                )
    set_tf32(False)
    add_ratios(rows)
    return rows


def add_ratios(rows: List[Dict[str, Any]]) -> None:
    """Per-sentence time relative to IG and throughput relative to the reference."""
    for row in rows:
        ig = next(
            (
                r
                for r in rows
                if r["method"] == "LayerIG n_steps=50"
                and r["batch"] == row["batch"]
                and r["precision"] == row["precision"]
            ),
            None,
        )
        reference = next(
            r
            for r in rows
            if r["method"] == "reference loop" and r["precision"] == row["precision"]
        )
        if ig is not None:
            row["x_IG_time"] = row["seconds_per_sentence"] / ig["seconds_per_sentence"]
        row["x_reference_throughput"] = (
            reference["seconds_per_sentence"] / row["seconds_per_sentence"]
        )


DEFAULT_MODEL_SETTINGS = {
    "sigma previous default (1 chain, 4 + 23 x 2)": previous(),
    "sigma 46 x 1 (old layout)": previous(n_steps=46, n_samples=1),
}
IG_NAME = "LayerIG n_steps=50"


def default_model_setup(device: torch.device, n_sentences: int):
    """The default model, its logit r (the previous TextExplainer default) and the
    test sentences."""
    from captum_sigma.text import TextExplainer
    from captum_sigma.text.default_model import rotten_tomatoes_split

    explainer = TextExplainer.default(device=device, output="logit")
    r = explainer.regularization()  # as TextExplainer: LogitsOutput on the sample
    texts = [text for text, _ in rotten_tomatoes_split("test")[:n_sentences]]
    return explainer, r, texts


def default_model_batches(explainer, texts: List[str], batch: int):
    """Tokenised batches of ``batch`` texts (the texts repeated to fill a batch)."""
    from captum_sigma.text.tokenization import tokenize_texts

    if batch > len(texts):
        texts = (texts * math.ceil(batch / len(texts)))[:batch]
    batches = []
    for start in range(0, len(texts), batch):
        encoded = tokenize_texts(
            explainer.tokenizer,
            texts[start : start + batch],
            explainer.max_length,
            explainer.device,
        )
        ids, mask = encoded.input_ids, encoded.attention_mask
        with torch.no_grad():
            target = explainer.model(input_ids=ids, attention_mask=mask).logits
        batches.append((ids, mask, target.argmax(-1).tolist()))
    return batches


def default_model_method(explainer, r, name: str, ig_rows, sigma_rows) -> Callable:
    """A function of one tokenised batch that attributes it with ``name``."""
    from captum_sigma.text.model import LogitsOutput

    forward = LogitsOutput(explainer.model, r)
    embeddings = explainer.model.bert.embeddings
    if name == IG_NAME:
        ig = LayerIntegratedGradients(forward, embeddings)

        def run_ig(ids, mask, target):
            return ig.attribute(
                ids,
                baselines=pad_baseline(ids, mask, explainer.tokenizer),
                target=target,
                additional_forward_args=(mask,),
                n_steps=50,
                internal_batch_size=ig_rows,
            )

        return run_ig
    sigma = LayerSigmaAttribution(forward, embeddings)
    options = DEFAULT_MODEL_SETTINGS[name]

    def run_sigma(ids, mask, target):
        return sigma.attribute(
            ids,
            target=target,
            additional_forward_args=(mask,),
            token_mask=mask,
            regularization=1.0,
            return_input_shape=False,
            internal_batch_size=sigma_rows,
            options=options,
        )

    return run_sigma


def run_default_model(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """Per-sentence seconds on the default model, methods interleaved per repeat."""
    device = torch.device(args.device)
    explainer, r, texts = default_model_setup(device, args.sentences)
    names = [IG_NAME, *DEFAULT_MODEL_SETTINGS]
    methods = {
        name: default_model_method(explainer, r, name, args.ig_rows, args.sigma_rows)
        for name in names
    }
    passes = {IG_NAME: 50}
    passes.update(
        {k: o.passes_per_example() for k, o in DEFAULT_MODEL_SETTINGS.items()}
    )
    batches = {b: default_model_batches(explainer, texts, b) for b in args.batches}
    warm = batches[args.batches[0]][0]
    for method in methods.values():  # warm-up (allocator, lazy init), not timed
        method(warm[0][:1], warm[1][:1], warm[2][:1])
    times: Dict[Any, List[float]] = {}
    for repeat in range(args.repeats):
        for batch in args.batches:
            sentences = sum(len(t) for _, _, t in batches[batch])
            for name in names:
                reset_peak_memory(device)
                seconds = sum(
                    timed(lambda b=b, f=methods[name]: f(*b), device)
                    for b in batches[batch]
                )
                times.setdefault((batch, name), []).append(seconds / sentences)
                print(
                    f"repeat {repeat} batch {batch} {name}: "
                    f"{seconds / sentences:.3f} s/sentence",
                    flush=True,
                )
    rows = []
    for batch in args.batches:
        ig = times[(batch, IG_NAME)]
        for name in names:
            own = times[(batch, name)]
            ratios = [a / b for a, b in zip(own, ig)]
            rows.append(
                dict(
                    method=name,
                    batch=batch,
                    seconds_per_sentence=float(np.median(own)),
                    seconds_per_repeat=own,
                    passes_per_sentence=passes[name],
                    x_IG_time=float(np.median(ratios)),
                    x_IG_per_repeat=ratios,
                )
            )
    return rows


def main_default_model(args: argparse.Namespace) -> None:
    if args.batches is None:
        args.batches = [1, 8, 32]
    if args.ig_rows is None:
        args.ig_rows = 400  # 8 sentences x 50 steps per pass (bounded CPU memory)
    rows = run_default_model(args)
    print_table(
        rows,
        [
            "method",
            "batch",
            "seconds_per_sentence",
            "passes_per_sentence",
            "x_IG_time",
            "x_IG_per_repeat",
        ],
    )
    if args.no_save:
        return
    path = save_results(
        f"bench_speed_default_model_{args.device}",
        {
            "machine": machine(),
            "args": vars(args),
            "sentences": 'rotten_tomatoes_split("test")[:%d]' % args.sentences,
            "ig_baseline": "[PAD] ids, [CLS]/[SEP] and padding kept",
            "timing": "median over interleaved repeats; ratio per repeat, median",
            "rows": rows,
        },
    )
    print(f"saved {path}")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="CPU smoke run on a tiny model"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--batches", type=int, nargs="+", default=None)
    parser.add_argument("--reference-steps", type=int, default=None)
    parser.add_argument(
        "--ig-rows",
        type=int,
        default=None,
        help="internal_batch_size of IG (rows per pass)",
    )
    parser.add_argument(
        "--sigma-rows",
        type=int,
        default=None,
        help="internal_batch_size of sigma (rows per pass)",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="print only (smoke tests)"
    )
    parser.add_argument(
        "--default-model",
        action="store_true",
        help="time the default model (TextExplainer.default) against LayerIG",
    )
    parser.add_argument(
        "--sentences", type=int, default=16, help="--default-model: test sentences"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="--default-model: interleaved repeats"
    )
    args = parser.parse_args(argv)
    if args.device is None:
        if args.default_model:
            args.device = "cpu"
        else:
            args.device = (
                "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
            )
    if args.device == "cpu":
        torch.set_num_threads(1)
    if args.default_model:
        main_default_model(args)
        return
    if args.batches is None:
        args.batches = [1, 8] if args.quick else [1, 64, 256]
    if args.reference_steps is None:
        args.reference_steps = 20 if args.quick else 200
    if args.device == "cpu":
        torch.set_num_threads(1)
    rows = run(args)
    print_table(
        rows,
        [
            "precision",
            "method",
            "batch",
            "seconds_per_sentence",
            "passes_per_sentence",
            "x_IG_time",
            "x_reference_throughput",
            "peak_mb",
        ],
    )
    if args.no_save:
        return
    name = "bench_speed_quick" if args.quick else f"bench_speed_{args.device}"
    path = save_results(name, {"machine": machine(), "args": vars(args), "rows": rows})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
