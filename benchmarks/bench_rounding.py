"""How far the default model's σ moves with batching, batch size and threads.

Float rounding differs between a padded batch and a text alone, between batch sizes
and between thread counts; the solver amplifies it (tests/text/test_rounding.py).
This script measures the resulting relative change of σ on the default model
(the previous TextExplainer default: ``TextExplainer.default(output="logit",
options=SigmaOptions())``, predicted-class logit / r) on held-out sentences: batch 64
vs each text alone (batch 1), and 1 vs 2 torch threads at batch 64.

    python benchmarks/bench_rounding.py --n 16 [--device cuda]

Prints a table and writes benchmarks/results/bench_rounding_<device>.json.
"""

import argparse
import os
from typing import List, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from captum_sigma import SigmaOptions  # noqa: E402
from captum_sigma.text import TextExplainer  # noqa: E402
from captum_sigma.text.default_model import rotten_tomatoes_split  # noqa: E402

from _common import machine, print_table, save_results  # noqa: E402


def sigmas(explainer: TextExplainer, texts: List[str], batch_size: int, threads: int):
    torch.set_num_threads(threads)
    explainer.batch_size = batch_size
    return [
        torch.tensor(e.sigma, dtype=torch.float64) for e in explainer.explain(texts)
    ]


def max_relative(a, b) -> float:
    return max(float(((x - y).abs() / y).max()) for x, y in zip(a, b))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    texts = [text for text, _ in rotten_tomatoes_split("test")[: args.n]]
    explainer = TextExplainer.default(
        device=args.device, output="logit", options=SigmaOptions()
    )
    explainer.regularization()
    batched = sigmas(explainer, texts, 64, 1)
    alone = sigmas(explainer, texts, 1, 1)
    two_threads = sigmas(explainer, texts, 64, 2)
    rows = [
        {
            "comparison": "batch 64 vs alone (1 thread)",
            "max_rel_sigma_change": max_relative(batched, alone),
        },
        {
            "comparison": "1 vs 2 threads (batch 64)",
            "max_rel_sigma_change": max_relative(batched, two_threads),
        },
    ]
    print_table(rows, ["comparison", "max_rel_sigma_change"])
    device = torch.device(args.device).type
    path = save_results(
        f"bench_rounding_{device}",
        {"machine": machine(), "sentences": args.n, "rows": rows},
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
