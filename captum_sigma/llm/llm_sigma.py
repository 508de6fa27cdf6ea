#!/usr/bin/env python3
"""LLMSigmaAttribution: sigma attribution of a generative language model's output."""

from copy import copy
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from captum.attr import LLMAttributionResult, LLMGradientAttribution, TextTokenInput
from captum.log import log_usage
from torch import Tensor

from captum_sigma._captum_compat import TokenizerLike, convert_ids_to_pretty_tokens
from captum_sigma.attr import LayerSigmaAttribution, check_internal_batch_size
from captum_sigma.engine import SigmaOptions
from captum_sigma.llm.forward import (
    DEFAULT_EXPLAINED,
    check_explained,
    lm_regularization,
    next_token_forward,
)
from captum_sigma.llm.rows import NextTokenRows

__all__ = ["LLMSigmaAttribution"]

#: How ``seq_attr`` is defined (see :meth:`LLMSigmaAttribution.attribute`).
SEQ_ATTR_MODES = ("sum", "joint")


class LLMSigmaAttribution(LLMGradientAttribution):
    r"""
    Sigma attribution (Guan et al., ICML 2019) of a causal language model's
    continuation, through Captum's LLM attribution API: for every output token
    it learns the largest Gaussian noise ``σ_i`` each prompt token's embedding
    tolerates while the model's next-token output stays nearly unchanged, and
    scores the token by the information it keeps, ``D · log(scale / σ_i)`` nats
    (``D`` = embedding size). By default the explained value is the target
    token's log-probability, self-normalised (each output token's change is
    divided by its own clean value), the choice of the ground-truth study in
    ``docs/llm.md``.

    The scores are **information, in nats, and never negative** (0 = the output
    does not need the token; larger = it needs more of it). Captum's other LLM
    methods (``LayerIntegratedGradients``, ``FeatureAblation``, ...) give *signed*
    contributions to the log-probability instead: compare rankings or
    magnitudes, not signs.

    Captum's ``LLMGradientAttribution`` runs its method once per output token.
    This class solves all of them at once: row ``k`` of one right-padded batch
    holds the prompt and the target's first ``k`` tokens
    (:class:`~captum_sigma.llm.rows.NextTokenRows`), and the sigma engine's rows
    are independent, so row ``k`` equals the single-row solve (up to the float
    rounding that padding causes) and the cost is that of one batched solve.

    Only the prompt's interpretable tokens are perturbed (not ``skip_tokens`` of
    the ``TextTokenInput``, nor the target tokens fed back to the model): each
    row's ``σ`` is the information of the prompt tokens given the previous output
    tokens.

    The model's state is left as it was: no gradient is written to its
    parameters, its train/eval mode and ``config.use_cache`` are untouched (the
    forward passes ask for no cache) and every hook is removed.

    Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
    http://proceedings.mlr.press/v97/guan19a.html

    Examples::

        >>> from captum.attr import TextTokenInput
        >>> from captum_sigma import LLMSigmaAttribution, LayerSigmaAttribution
        >>> sigma = LLMSigmaAttribution(
        ...     LayerSigmaAttribution(model, model.get_input_embeddings()), tokenizer
        ... )
        >>> inp = TextTokenInput("g7 a6 c4 e3 ; c", tokenizer)
        >>> result = sigma.attribute(inp, target="4")
        >>> result.token_attr        # (n_output_tokens, n_prompt_tokens), nats
        >>> result.plot_token_attr()
        >>> result = sigma.attribute(inp, gen_args={"max_new_tokens": 5})
    """

    SUPPORTED_METHODS = (LayerSigmaAttribution,)
    SUPPORTED_INPUTS = (TextTokenInput,)

    def __init__(
        self, attr_method: LayerSigmaAttribution, tokenizer: TokenizerLike
    ) -> None:
        r"""
        Args:
            attr_method (LayerSigmaAttribution): Sigma on the model's input
                embedding layer, ``LayerSigmaAttribution(model,
                model.get_input_embeddings())``, where ``model`` is a Hugging
                Face style causal language model (``model(input_ids=...,
                attention_mask=...).logits``, ``generate``).
            tokenizer (Tokenizer): The model's tokenizer.
        """
        super().__init__(attr_method, tokenizer)

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inp: TextTokenInput,
        target: Union[str, Tensor, None] = None,
        gen_args: Optional[Dict[str, Any]] = None,
        options: Optional[SigmaOptions] = None,
        *,
        explained: str = DEFAULT_EXPLAINED,
        regularization: Union[None, float, Tensor] = None,
        seq_attr: str = "sum",
        internal_batch_size: Optional[int] = None,
        show_progress: bool = False,
    ) -> LLMAttributionResult:
        r"""
        Args:
            inp (TextTokenInput): The prompt; its ``skip_tokens`` are neither
                perturbed nor scored.
            target (str or Tensor, optional): The continuation to explain (text,
                encoded without special tokens, or token ids). None generates it
                with ``model.generate(**gen_args)``. Default: None
            gen_args (dict, optional): Generation arguments when ``target`` is
                None (Captum's default: 25 greedy tokens). Default: None
            options (SigmaOptions, optional): Every optimisation setting in one
                object, as in :meth:`SigmaAttribution.attribute
                <captum_sigma.SigmaAttribution.attribute>` (which says why one
                object); e.g. ``dataclasses.replace(options, scale=2.0)``.
                Default: None (``SigmaOptions()``)
            explained (str, optional): The next-token value explained for each
                output token (:data:`~captum_sigma.llm.forward.EXPLAINED`):
                ``"log_prob"`` (the target token's log-probability, Captum's
                target), ``"log_odds"`` (``log p − log(1 − p)``) or ``"logit"``.
                The default was chosen by the ground-truth study of
                ``docs/llm.md`` (self-normalised log-probability and log-odds
                tied; both clearly ahead of the log-probability divided by a
                data ``r``, which saturates on confident predictions).
                Default: ``DEFAULT_EXPLAINED``
            regularization (float or Tensor, optional): ``r``, the scalar
                normaliser of the explained value, e.g. from
                :meth:`estimate_regularization` on a sample of texts (makes
                scores comparable across prompts and output tokens). None divides
                each output token's change by its own clean value (self-
                normalisation, the default: it does not saturate on confident
                predictions; for ``"logit"`` it depends on the logits' arbitrary
                offset, give ``r``). Default: None
            seq_attr (str, optional): How ``seq_attr`` is defined: ``"sum"`` (the
                sum of ``token_attr`` over output tokens, Captum's convention for
                its LLM methods: the same columns as theirs, nats that add over
                output tokens, no extra cost) or ``"joint"`` (the paper's unified
                measure: one ``σ`` per prompt token for the whole continuation's
                vector of explained values, teacher-forced; one more row to
                solve). Default: "sum"
            internal_batch_size (int, optional): Bound on the rows (output tokens
                × chains × noise draws or warm-start probes) one forward pass
                sees; output tokens are solved in chunks of
                ``internal_batch_size // (chains · max(n_samples,
                warm_start_probes))``.
                Default: None (all output tokens in one batch)
            show_progress (bool, optional): Show a progress bar. Default: False

        Returns:
            LLMAttributionResult: ``token_attr`` of shape (n_output_tokens,
            n_prompt_tokens) and ``seq_attr`` of shape (n_prompt_tokens,), in nats
            (``≥ 0``); ``output_probs`` holds each target token's probability
            under the clean prompt (teacher-forced).
        """
        if not isinstance(inp, self.SUPPORTED_INPUTS):
            raise TypeError(
                f"LLMSigmaAttribution takes a TextTokenInput, got {type(inp).__name__}"
            )
        check_explained(explained)
        if seq_attr not in SEQ_ATTR_MODES:
            raise ValueError(
                f"seq_attr must be one of {SEQ_ATTR_MODES}, got {seq_attr!r}"
            )
        if options is None:
            options = SigmaOptions()
        elif not isinstance(options, SigmaOptions):
            raise TypeError(
                "options must be a SigmaOptions or None, got "
                f"{type(options).__name__}"
            )
        target_tokens = self._get_target_tokens(inp, target, gen_args)
        target_tokens = torch.as_tensor(target_tokens).reshape(-1).long()
        prompt = inp.inp_tensor.reshape(-1).to(self.device)
        interpretable = (
            torch.ones_like(prompt, dtype=torch.bool)
            if inp.itp_mask is None
            else inp.itp_mask.reshape(-1).to(self.device)
        )
        target_tokens = target_tokens.to(self.device)
        pad_id = self._pad_id()
        rows = NextTokenRows.per_token(prompt, target_tokens, interpretable, pad_id)
        solve = self._solver(
            explained, regularization, options, internal_batch_size, show_progress
        )
        scores, _ = solve(rows)
        token_attr = scores[:, : prompt.numel()][:, interpretable]
        if seq_attr == "joint":
            joint = NextTokenRows.joint(prompt, target_tokens, interpretable, pad_id)
            sequence = solve(joint)[0][0, : prompt.numel()][interpretable]
        else:
            sequence = token_attr.sum(0)
        probs = self._target_probs(prompt, target_tokens, pad_id)
        return LLMAttributionResult(
            seq_attr=sequence.cpu(),
            token_attr=token_attr.cpu(),
            input_tokens=inp.values,
            output_tokens=convert_ids_to_pretty_tokens(
                target_tokens.cpu(), self.tokenizer
            ),
            output_probs=probs.cpu(),
            inp=inp,
        )

    def estimate_regularization(
        self, texts: Any, explained: str = DEFAULT_EXPLAINED
    ) -> Tensor:
        r"""``r`` for ``attribute(regularization=...)``: the standard deviation of
        the explained value over every next-token position of ``texts``.

        Args:
            texts (list[str]): A sample of texts like the ones explained.
            explained (str, optional): As in :meth:`attribute`.
                Default: ``DEFAULT_EXPLAINED``

        Returns:
            A scalar tensor.
        """
        return lm_regularization(self.model, self.tokenizer, list(texts), explained)

    def attribute_future(self) -> Callable[[], LLMAttributionResult]:
        r"""Not implemented (as for Captum's LLM wrappers)."""
        raise NotImplementedError(
            "attribute_future is not implemented for LLMSigmaAttribution"
        )

    # -- internals -----------------------------------------------------------------

    def _solver(
        self,
        explained: str,
        regularization: Union[None, float, Tensor],
        options: SigmaOptions,
        internal_batch_size: Optional[int],
        show_progress: bool,
    ) -> Callable[[NextTokenRows], Tuple[Tensor, Tensor]]:
        """``solve(rows) -> (scores, sigma)``, both ``(B, T)``: a position's nats
        (0 where not perturbed) and its ``σ`` (NaN where not perturbed)."""
        method = copy(self.attr_method)
        method.forward_func = next_token_forward(self.model, explained)
        per_chunk = _rows_per_chunk(internal_batch_size, options)

        def solve(rows: NextTokenRows) -> Tuple[Tensor, Tensor]:
            batch, width = rows.input_ids.shape
            scores = torch.zeros(batch, width, device=self.device)
            sigma = torch.full((batch, width), float("nan"), device=self.device)
            chunk = per_chunk or batch
            for start in range(0, batch, chunk):
                end = min(batch, start + chunk)
                part = rows.select(start, end)
                attr, part_sigma = method.attribute.__wrapped__(  # type: ignore
                    method,
                    part.input_ids,
                    additional_forward_args=(
                        part.attention_mask,
                        part.positions,
                        part.targets,
                    ),
                    token_mask=part.perturbed,
                    regularization=regularization,
                    options=options,
                    internal_batch_size=internal_batch_size,
                    return_input_shape=False,
                    return_sigma=True,
                    show_progress=show_progress,
                )
                used = part.input_ids.shape[1]
                scores[start:end, :used] = attr.float()
                sigma[start:end, :used] = part_sigma.float()
            return scores, sigma

        return solve

    @torch.no_grad()
    def _target_probs(self, prompt: Tensor, target: Tensor, pad_id: int) -> Tensor:
        """Each target token's probability given the prompt and the tokens
        before it (one teacher-forced forward)."""
        row = NextTokenRows.joint(prompt, target, pad_id=pad_id)
        forward = next_token_forward(self.model, "log_prob")
        log_probs = forward(
            row.input_ids, row.attention_mask, row.positions, row.targets
        )
        return log_probs[0].exp()

    def _pad_id(self) -> int:
        for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
            value = getattr(self.tokenizer, name, None)
            if isinstance(value, int):
                return value
        return 0


def _rows_per_chunk(internal_batch_size: Optional[int], options: SigmaOptions) -> int:
    """Output tokens per solve so that one forward pass sees at most
    ``internal_batch_size`` rows (0: all of them). A step forwards ``n_samples``
    copies of every row per chain, the linearised warm start
    ``warm_start_probes``."""
    check_internal_batch_size(internal_batch_size)
    if internal_batch_size is None:
        return 0
    copies = options.n_samples
    if options.init == "linearized":
        copies = max(copies, options.warm_start_probes)
    copies *= getattr(options, "chains", 1)  # independent chains share a forward
    return max(1, internal_batch_size // copies)
