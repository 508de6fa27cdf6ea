"""Measuring how much the sigma solver amplifies float rounding of the forward pass.

Rounding differs between a batched and a single-example forward pass (padding
changes the order of float reductions) and between CPUs (AVX2 vs AVX-512 kernels,
thread counts). Its effect on σ is ``amplification × relative rounding of Φ``. Both
factors are measured here, never assumed: :func:`perturbed_outputs` injects a
relative perturbation of a known size into every forward pass (a machine-independent
stand-in for rounding), and :func:`relative_forward_difference` measures the
rounding that padding actually produces on the machine running the test. An
invariance test then allows ``AMPLIFICATION_BOUND × measured rounding``.
"""

import contextlib
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

#: Relative size of the injected perturbation (about one float32 ulp).
INJECTED = 1e-7

#: Upper bound of ``max |Δσ / σ| / INJECTED`` asserted by the amplification tests
#: (tests/text/test_rounding.py) for the tiny random models and the default model;
#: the invariance tests allow this factor times the measured forward rounding.
AMPLIFICATION_BOUND = 2000.0

#: Smallest forward rounding an invariance test assumes: half an ulp of float32.
#: Even when padding happens to give bit-identical logits, the solver's noisy forward
#: passes see other shapes than the clean one.
MIN_ROUNDING = 2.0**-24


@contextlib.contextmanager
def perturbed_outputs(module: nn.Module, seed: int = 0) -> Iterator[None]:
    """Multiplies ``module``'s output by ``1 + INJECTED · η`` (η ~ N(0, 1), fresh
    on every call from a seeded generator), as rounding would perturb it."""
    generator = torch.Generator().manual_seed(seed)

    def hook(_module: nn.Module, _inputs: object, output: Tensor) -> Tensor:
        eta = torch.randn(output.shape, generator=generator).to(output)
        return output * (1 + INJECTED * eta)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def relative_sigma_change(a: Sequence[float], b: Sequence[float]) -> float:
    """``max |a − b| / b`` over tokens."""
    a_t, b_t = torch.tensor(a, dtype=torch.float64), torch.tensor(
        b, dtype=torch.float64
    )
    return float(((a_t - b_t).abs() / b_t).max())


def relative_forward_difference(
    model: nn.Module, tokenizer, texts: Sequence[str]
) -> float:
    """Largest relative difference of the logits of ``texts`` batched vs alone."""
    with torch.no_grad():
        batch = tokenizer(list(texts), padding=True, return_tensors="pt")
        together = model(**batch).logits
        worst = 0.0
        for row, text in enumerate(texts):
            alone = model(**tokenizer([text], return_tensors="pt")).logits[0]
            change = (together[row] - alone).abs().max() / alone.abs().max()
            worst = max(worst, float(change))
    return max(worst, MIN_ROUNDING)
