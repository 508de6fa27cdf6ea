"""The paper's first tutorial: sigma of a linear toy model against its closed form.

Φ(x) = W @ x with W = [10, 20, 5, −20, −10] mixes five 256-dimensional "words"
x = randn(5, 256) / 100 into one 256-dimensional hidden state. r is the population
standard deviation of Φ over 100 random x. For a linear Φ the expected loss is
A Σ_i w_i² σ_i² − (rate / n) Σ_i log σ_i + c with A = mean(r⁻²), so the optimum is
σ_i* = sqrt(rate / (2 n A)) / |w_i|: words 2 and 4 (|w| = 20) matter most, word 3
(|w| = 5) least. The script prints σ next to the closed form and draws both.

Guan et al., "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

Run::

    python examples/linear_toy.py [--out DIR]
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch
from matplotlib.figure import Figure

from captum_sigma import SigmaAttribution, SigmaOptions

WEIGHTS = [10.0, 20.0, 5.0, -20.0, -10.0]
DIM = 256
SCALE = 1.0
RATE = 0.1
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def phi(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Φ(x) = W @ x for a batch x of shape (B, n_words, dim); returns (B, dim)."""
    return torch.einsum("i,bid->bd", weights, x)


def run(seed: int = 0) -> dict:
    """Solves the toy and returns sigma, the closed form, r and the words."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.tensor(WEIGHTS)
    n_words = weights.numel()
    x = torch.randn(1, n_words, DIM, generator=generator) / 100
    sample = torch.randn(100, n_words, DIM, generator=generator) / 100
    r = phi(sample, weights).std(0, unbiased=False)

    sigma_attr = SigmaAttribution(lambda inputs: phi(inputs, weights))
    _, sigma = sigma_attr.attribute(
        x,
        options=SigmaOptions(
            scale=SCALE, rate=RATE, n_steps=300, n_samples=4, seed=seed
        ),
        regularization=r,
        return_sigma=True,
    )
    area = (r**-2).mean()
    closed_form = (RATE / (2 * n_words * area)).sqrt() / weights.abs()
    return {"sigma": sigma[0], "closed_form": closed_form, "weights": weights}


def plot(result: dict) -> Figure:
    """σ per word (bars) with the closed form (markers), and the σ strip."""
    words = [f"word {i + 1}\nw={w:g}" for i, w in enumerate(WEIGHTS)]
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    bars, strip = fig.subplots(2, 1, height_ratios=[3, 1])
    positions = range(len(words))
    bars.bar(positions, result["sigma"].tolist(), color="#4a90c2", label="sigma")
    bars.plot(
        positions,
        result["closed_form"].tolist(),
        "k_",
        markersize=28,
        mew=2,
        label="closed form sqrt(rate/(2nA))/|w|",
    )
    bars.set_xticks(list(positions), words)
    bars.set_ylabel("σ")
    bars.set_title("Linear toy Φ(x) = W @ x: σ of each word")
    bars.legend(loc="upper right", fontsize=8)
    image = strip.imshow(
        result["sigma"].reshape(1, -1).numpy(), cmap="GnBu_r", aspect="auto"
    )
    strip.set_xticks(list(positions), [f"word {i + 1}" for i in positions])
    strip.set_yticks([])
    fig.colorbar(image, ax=strip, label="σ")
    strip.set_title("dark = small σ = important", fontsize=9)
    return fig


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    result = run(args.seed)
    print(f"{'word':>5} {'w':>6} {'sigma':>9} {'closed form':>12} {'ratio':>7}")
    for index, weight in enumerate(WEIGHTS):
        sigma = float(result["sigma"][index])
        closed = float(result["closed_form"][index])
        print(
            f"{index + 1:>5} {weight:>6g} {sigma:>9.5f} {closed:>12.5f} "
            f"{sigma / closed:>7.3f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "linear_toy.png"
    plot(result).savefig(path, dpi=120)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
