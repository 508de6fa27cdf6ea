r"""``captum.metrics.infidelity`` and ``sensitivity_max`` adapted to token inputs.

Captum's defaults perturb inputs with float noise, which is meaningless for
token ids. Here infidelity perturbs the output of the embedding layer (float
vectors) and sensitivity perturbs the ids themselves by replacing one random
eligible token by [MASK], so ids stay integer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
import torch
from captum.metrics import infidelity, sensitivity_max
from torch import Tensor, nn

from captum_sigma._captum_compat import forward_layer_eval as _forward_layer_eval
from captum_sigma.attr.hooks import replaced_activations
from captum_sigma.evaluation._checks import (
    TargetLike,
    check_eligible,
    check_positive_int,
    check_same_shape,
    check_token_batch,
)
from captum_sigma.evaluation.forward import (
    PredictProba,
    full_probabilities_and_target,
    target_tensor,
)


def embedding_infidelity(
    predict_proba: PredictProba,
    layer: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    eligible: Tensor,
    attributions: Tensor,
    target: TargetLike = None,
    *,
    baseline_ids: Tensor | None = None,
    noise_std: float = 0.1,
    n_perturb_samples: int = 10,
    max_examples_per_batch: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    r"""Normalised infidelity (Yeh et al. 2019) with Gaussian noise on embeddings.

    Wraps ``captum.metrics.infidelity(..., normalize=True)``
    (https://arxiv.org/abs/1901.09392). The input of the metric is the output
    e of ``layer`` (e.g. ``model.bert.embeddings``), of shape (B, T, D). Each
    perturbation draws eps ~ N(0, noise_std^2), zero at non-eligible tokens
    ([CLS]/[SEP]/padding), and feeds ``e - eps * (e - e_baseline)`` to the rest
    of the model through a forward hook on ``layer``:

    - per-token ``attributions`` (B, T): one eps per token, scaling the whole
      embedding, so sum_t eps_t * a_t predicts the drop of p_c;
    - layer ``attributions`` (B, T, D): one eps per embedding coordinate.

    This matches attributions that sum to the output change relative to the
    baseline (IG, InputXGradient, DeepLift, FeatureAblation, Lime, KernelShap);
    with ``normalize=True`` the scale of the attributions does not matter.
    Lower is better.

    .. note:: Gaussian-noise perturbations favour methods that optimise
        robustness to noise (sigma does): label rows using this metric so.

    Args:
        predict_proba (Callable): ``predict_proba(input_ids, attention_mask)``
                returning (N, C) class probabilities; it must run ``layer``
                exactly once per call.
        layer (nn.Module): The embedding layer whose output is perturbed; it
                must return a tensor of shape (N, T, D).
        input_ids (Tensor): Token ids, shape (B, T).
        attention_mask (Tensor): 1 for real tokens, 0 for padding, shape (B, T).
        eligible (Tensor): Bool mask of the tokens that may be perturbed, (B, T).
        attributions (Tensor): Per-token scores (B, T) or layer attributions
                (B, T, D) for ``target``.
        target (int, sequence, Tensor, optional): Class per example. Default:
                None, the predicted class.
        baseline_ids (Tensor, optional): Ids whose layer output is the baseline
                the attributions are relative to (e.g. [PAD] ids with
                [CLS]/[SEP] kept), shape (B, T). Default: None, a zero baseline.
        noise_std (float, optional): Standard deviation of eps. Default: 0.1.
        n_perturb_samples (int, optional): Perturbations per example.
                Default: 10.
        max_examples_per_batch (int, optional): Rows per forward pass, passed
                to captum. Default: None, all at once.
        seed (int, optional): Seed of the noise generator. Default: 0.

    Returns:
        values (ndarray): Float64 infidelity per example, shape (B,).

    Examples::

        >>> predict = lambda ids, mask: model(
        >>>     input_ids=ids, attention_mask=mask).logits.softmax(-1)
        >>> embedding_infidelity(predict, model.bert.embeddings, input_ids,
        >>>                      attention_mask, eligible, token_scores)
    """
    check_token_batch(input_ids, attention_mask)
    eligible = check_eligible(eligible, attention_mask)
    check_positive_int("n_perturb_samples", n_perturb_samples)
    if not noise_std > 0:
        raise ValueError(f"noise_std must be positive, got {noise_std!r}")
    n_examples = input_ids.shape[0]
    _, target_t = full_probabilities_and_target(
        predict_proba, input_ids, attention_mask, target, n_examples
    )
    embeddings = _capture_layer_output(predict_proba, layer, input_ids, attention_mask)
    baseline = torch.zeros_like(embeddings)
    if baseline_ids is not None:
        check_same_shape("baseline_ids", baseline_ids, input_ids.shape)
        baseline = _capture_layer_output(
            predict_proba, layer, baseline_ids, attention_mask
        )
    per_token = _check_attributions(attributions, embeddings.shape)
    layer_attributions = (
        (attributions[..., None] / embeddings.shape[-1]).expand_as(embeddings)
        if per_token
        else attributions
    ).to(device=embeddings.device, dtype=embeddings.dtype)
    generator = torch.Generator().manual_seed(seed)

    def perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
        repeats = inputs.shape[0] // n_examples
        shape = (inputs.shape[0], inputs.shape[1], 1 if per_token else inputs.shape[2])
        noise = torch.randn(shape, generator=generator, dtype=inputs.dtype)
        noise = noise.to(inputs.device) * noise_std
        noise = noise * eligible.repeat_interleave(repeats, 0)[..., None]
        noise = noise.expand_as(inputs)
        base = baseline.repeat_interleave(repeats, 0)
        return noise, inputs - noise * (inputs - base)

    def forward_from_layer(layer_output: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        with _layer_output_replaced(layer, layer_output):
            return predict_proba(ids, mask)

    values = infidelity(
        forward_from_layer,
        perturb,
        embeddings,
        layer_attributions,
        additional_forward_args=(input_ids, attention_mask),
        target=target_t,
        n_perturb_samples=n_perturb_samples,
        max_examples_per_batch=max_examples_per_batch,
        normalize=True,
    )
    return values.detach().double().cpu().numpy()


def token_sensitivity_max(
    explanation_func: Callable[..., Tensor | tuple[Tensor, ...]],
    input_ids: Tensor,
    attention_mask: Tensor,
    eligible: Tensor,
    mask_token_id: int,
    target: TargetLike = None,
    *,
    n_perturb_samples: int = 10,
    max_examples_per_batch: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    r"""Max-sensitivity (Yeh et al. 2019) under one-token [MASK] replacements.

    Wraps ``captum.metrics.sensitivity_max`` with a perturbation that replaces
    one random eligible token of each copy by [MASK] (ids stay integer; no
    float noise is ever added to ids). The value is the largest relative change
    ``||expl(x') - expl(x)|| / ||expl(x)||`` (Frobenius norm) over
    ``n_perturb_samples`` perturbations. The change includes the masked token's
    own score. Lower is better; stochastic methods also pay for their seed
    noise unless they fix their seed.

    Args:
        explanation_func (Callable): Called as ``explanation_func(input_ids,
                additional_forward_args=(attention_mask,), target=target)``,
                e.g. the ``attribute`` method of a Captum attribution of a model
                ``forward(input_ids, attention_mask)``; returns per-token scores
                (N, T) (recommended, comparable across methods) or any tensor
                with batch dim N. Fix other options with ``functools.partial``.
        input_ids (Tensor): Token ids, shape (B, T).
        attention_mask (Tensor): 1 for real tokens, 0 for padding, shape (B, T).
        eligible (Tensor): Bool mask of the tokens that may be masked, (B, T).
        mask_token_id (int): Id of [MASK].
        target (int, sequence, Tensor, optional): Class per example, passed to
                ``explanation_func`` (expanded per perturbation). Default: None.
        n_perturb_samples (int, optional): Perturbations per example.
                Default: 10.
        max_examples_per_batch (int, optional): Rows per explanation call,
                passed to captum. Default: None, all at once.
        seed (int, optional): Seed of the token choice. Default: 0.

    Returns:
        values (ndarray): Float64 sensitivity per example, shape (B,).

    Examples::

        >>> lig = LayerIntegratedGradients(predict, model.bert.embeddings)
        >>> explain = lambda ids, **kw: lig.attribute(ids, **kw).sum(-1)
        >>> token_sensitivity_max(explain, input_ids, attention_mask, eligible,
        >>>                       tokenizer.mask_token_id, target=predicted)
    """
    check_token_batch(input_ids, attention_mask)
    eligible = check_eligible(eligible, attention_mask)
    check_positive_int("n_perturb_samples", n_perturb_samples)
    if isinstance(mask_token_id, bool) or not isinstance(mask_token_id, int):
        raise TypeError(f"mask_token_id must be an int, got {mask_token_id!r}")
    n_examples = input_ids.shape[0]
    if target is not None and not isinstance(target, int):
        target = target_tensor(target, n_examples).to(input_ids.device)
    generator = torch.Generator().manual_seed(seed)

    def perturb(inputs: Tensor) -> Tensor:
        repeats = inputs.shape[0] // n_examples
        rows_eligible = eligible.repeat_interleave(repeats, 0)
        return _mask_one_random_token(inputs, rows_eligible, mask_token_id, generator)

    def explain(
        inputs: Tensor | tuple[Tensor, ...],
        additional_forward_args: Any = None,
        target: Any = None,
    ) -> Tensor | tuple[Tensor]:
        # captum passes a 1-tuple first and a tensor later; answer in kind
        ids = inputs[0] if isinstance(inputs, tuple) else inputs
        scores = explanation_func(
            ids, additional_forward_args=additional_forward_args, target=target
        )
        scores = scores[0] if isinstance(scores, tuple) else scores
        return (scores,) if isinstance(inputs, tuple) else scores

    values = sensitivity_max(
        explain,
        input_ids,
        perturb_func=perturb,
        n_perturb_samples=n_perturb_samples,
        max_examples_per_batch=max_examples_per_batch,
        additional_forward_args=(attention_mask,),
        target=target,
    )
    return values.detach().double().cpu().numpy()


def _mask_one_random_token(
    input_ids: Tensor,
    eligible: Tensor,
    mask_token_id: int,
    generator: torch.Generator,
) -> Tensor:
    """Replaces one uniformly drawn eligible token per row by [MASK]."""
    keys = torch.rand(eligible.shape, generator=generator).to(eligible.device)
    choice = keys.masked_fill(~eligible, -1.0).argmax(dim=1)
    rows = torch.nonzero(eligible.any(dim=1)).squeeze(1)
    perturbed = input_ids.clone()
    perturbed[rows, choice[rows]] = mask_token_id
    return perturbed


def _check_attributions(attributions: Tensor, layer_shape: torch.Size) -> bool:
    """Returns True for per-token (B, T) attributions, False for (B, T, D)."""
    if not isinstance(attributions, Tensor):
        raise TypeError("attributions must be a tensor")
    if tuple(attributions.shape) == tuple(layer_shape[:2]):
        return True
    if tuple(attributions.shape) == tuple(layer_shape):
        return False
    raise ValueError(
        f"attributions must have shape {tuple(layer_shape[:2])} (per token) or "
        f"{tuple(layer_shape)} (layer output), got {tuple(attributions.shape)}"
    )


def _capture_layer_output(
    predict_proba: PredictProba, layer: nn.Module, input_ids: Tensor, mask: Tensor
) -> Tensor:
    """``layer``'s output in one no_grad run of ``predict_proba`` (Captum's
    ``_forward_layer_eval``, as the Layer* methods capture it)."""
    try:
        outputs = _forward_layer_eval(predict_proba, (input_ids,), layer, (mask,))
    except AssertionError:  # captum: the hook saw no output
        raise ValueError(
            "layer did not run during predict_proba(input_ids, ...)"
        ) from None
    if len(outputs) != 1:
        raise ValueError(f"layer must return one tensor, got {len(outputs)}")
    return _checked_layer_output(outputs[0]).detach().clone()


@contextmanager
def _layer_output_replaced(layer: nn.Module, replacement: Tensor) -> Iterator[None]:
    """Makes ``layer`` return ``replacement`` (the package's one replacing hook)."""
    with replaced_activations(layer, (replacement,), attribute_to_layer_input=False):
        yield


def _checked_layer_output(output: Any) -> Tensor:
    if not isinstance(output, Tensor) or output.dim() != 3:
        raise ValueError(
            "layer must return one tensor of shape (batch, tokens, hidden), got "
            f"{tuple(output.shape) if isinstance(output, Tensor) else type(output)}"
        )
    return output
