"""Throughput of the corpus job (`captum-sigma explain-dataset`) on the default model.

Held-out Rotten Tomatoes sentences (test split of the default model) are written to a
.txt file and explained by the same job the CLI runs (length bucketing, shards,
merge), with the default sigma settings. Prints sentences per second with the batch
size and the token-length mix, and writes benchmarks/results/bench_dataset_<dev>.json.

    python benchmarks/bench_dataset.py --quick        # 32 sentences
    python benchmarks/bench_dataset.py --n 512        # CPU or GPU (--device cuda)
"""

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import List, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from captum_sigma.jobs import DatasetJob  # noqa: E402
from captum_sigma.jobs.text_adapter import TextBatchExplainer  # noqa: E402
from captum_sigma.text import TextExplainer  # noqa: E402
from captum_sigma.text.default_model import rotten_tomatoes_split  # noqa: E402

from _common import machine, print_table, save_results  # noqa: E402


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None, help="sentences")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(
        args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    )
    if device.type == "cpu":
        torch.set_num_threads(1)
    n = args.n or (32 if args.quick else 256)
    batch_sizes = args.batch_sizes or ([16] if args.quick else [16, 64])
    texts = [text for text, _ in rotten_tomatoes_split("test")[:n]]
    explainer = TextExplainer.default(device=device)
    adapter = TextBatchExplainer(explainer, "default")
    lengths = [adapter.count_tokens(text) for text in texts]
    explainer.regularization()  # estimate r once, outside the timed runs
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "texts.txt"
        source.write_text("\n".join(texts) + "\n", encoding="utf-8")
        for batch_size in batch_sizes:
            job = DatasetJob(
                source,
                Path(folder) / f"out-{batch_size}",
                adapter,
                batch_size=batch_size,
                show_progress=False,
            )
            summary = job.run()
            rows.append(
                {
                    "device": str(device),
                    "batch_size": batch_size,
                    "sentences": summary.items,
                    "errors": summary.errors,
                    "seconds": summary.seconds,
                    "sentences_per_second": summary.sentences_per_second,
                    "passes_per_sentence": explainer.options.passes_per_example(),
                }
            )
    print(
        f"{n} sentences, tokens per sentence: min {min(lengths)}, median "
        f"{statistics.median(lengths)}, max {max(lengths)}; torch threads "
        f"{torch.get_num_threads()}"
    )
    print_table(
        rows,
        [
            "device",
            "batch_size",
            "sentences",
            "errors",
            "seconds",
            "sentences_per_second",
            "passes_per_sentence",
        ],
    )
    if args.no_save:
        return
    name = "bench_dataset_quick" if args.quick else f"bench_dataset_{device.type}"
    path = save_results(
        name,
        {
            "machine": machine(),
            "sentences": n,
            "tokens": {
                "min": min(lengths),
                "median": statistics.median(lengths),
                "max": max(lengths),
            },
            "rows": rows,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
