#!/usr/bin/env python3
"""SigmaAttribution: Captum adapter of the sigma engine for input-level attribution."""

from typing import Any, Callable, Optional, Tuple, Union

import torch
from captum._utils.common import _format_output, _run_forward
from captum._utils.typing import TargetType
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor

from captum_sigma.attr import common
from captum_sigma.engine import HiddenFunction, SigmaOptions, SigmaProblem

__all__ = ["SigmaAttribution"]


class SigmaAttribution(PerturbationAttribution):
    r"""
    Information-based attribution of Guan et al. (ICML 2019): for every feature group
    (by default a token's whole embedding) it learns the largest isotropic Gaussian
    noise scale ``σ_g`` that the group tolerates while the explained output
    ``s = Φ(x)`` stays nearly unchanged, by minimising

    .. math::
        \operatorname{mean}\big((\Phi(\tilde x) - s)^2 / r^2\big)
        - \text{rate} \cdot \operatorname{mean}_g \log(\sigma_g / \text{scale}),
        \qquad \tilde x_g = x_g + \sigma_g \varepsilon_g,\ \sigma_g =
        \text{scale} \cdot \operatorname{sigmoid}(\rho_g)

    A small ``σ_g`` means the output needs group ``g``. The attribution of group ``g``
    is the information it keeps, ``|g| · log(scale / σ_g)`` nats (non-negative,
    larger = more important).

    Examples are optimised together but independently: row ``i`` of a batched call
    equals the call on example ``i`` alone (same seed), whatever else is in the batch.
    No gradient is written to the model's parameters, the model's mode and the global
    RNG state are left unchanged.

    Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
    http://proceedings.mlr.press/v97/guan19a.html
    """

    def __init__(self, forward_func: Callable[..., Tensor]) -> None:
        r"""
        Args:
            forward_func (Callable): The forward function of the model, or any
                modification of it, taking the (embedding-level, floating) inputs
                batch first and returning the output to explain, batch first.
        """
        PerturbationAttribution.__init__(self, forward_func)

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    @log_usage()
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        n_steps: Optional[int] = None,
        lr: Optional[float] = None,
        n_samples: Optional[int] = None,
        scale: Optional[float] = None,
        rate: Optional[float] = None,
        regularization: Union[None, float, Tensor] = None,
        seed: Optional[int] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: bool = False,
        return_standard_error: bool = False,
        show_progress: bool = False,
        selection: Optional[str] = None,
        init: Optional[str] = None,
        warm_start_probes: Optional[int] = None,
        warm_start_rounds: Optional[int] = None,
        optimizer: Optional[str] = None,
        token_mask: Optional[Tensor] = None,
        options: Optional[SigmaOptions] = None,
    ) -> Union[Tensor, Tuple[Tensor, ...], Tuple[Any, Tensor]]:
        r"""
        Args:
            inputs (Tensor or tuple[Tensor, ...]): Floating inputs, batch first, e.g.
                word embeddings of shape (B, T, D). Token ids belong to
                :class:`LayerSigmaAttribution`.
            target (int, tuple, Tensor or list, optional): Output indices to explain,
                with Captum's semantics (one per example allowed). ``None`` explains
                the whole output, e.g. a hidden state as in the paper.
                Default: None
            additional_forward_args (Any, optional): Extra positional arguments of
                ``forward_func`` after the inputs; batch-first tensors are repeated
                with the noise draws. Default: None
            feature_mask (Tensor or tuple[Tensor, ...], optional): Integer feature
                ids per input element (broadcastable, batch 1 or B), one id space over
                the tuple; elements sharing an id share ``σ``. Negative ids are never
                perturbed nor scored. Default: one group per position for (B, T, D)
                inputs, one per element otherwise.
            n_steps, lr, n_samples, scale, rate, seed, selection, init,
            warm_start_probes, warm_start_rounds, optimizer (optional): Fields of
                :class:`~captum_sigma.SigmaOptions` (see its docstring for their
                meaning and defaults, e.g. ``SigmaOptions.n_steps``). Each one that
                is given (not None) overrides the same field of ``options``.
                Default: None (the value in ``options``)
            regularization (float or Tensor, optional): The normaliser ``r``: the
                explained output's change is divided by it. Normally the
                per-element std of the explained output over a data sample,
                broadcastable to one example's output (e.g. shape (D,) for a
                (B, T, D) output); see
                :func:`captum_sigma.estimate_regularization`. ``None`` divides by the
                example's own mean ``s²`` (not comparable across examples). Zero
                entries are clamped to ``captum_sigma.engine.REGULARIZATION_EPS``.
                Default: None
            internal_batch_size (int, optional): Bound on the rows one forward pass
                sees (examples × noise draws). Default: None (the whole batch)
            return_input_shape (bool, optional): Return attributions shaped like the
                inputs (each element holds its group's ``log(scale / σ_g)``, so summing
                a group's elements gives its score) or, if False, shape
                (B, n_groups) with the group scores. Default: True
            return_sigma (bool, optional): Also return ``σ`` of shape (B, n_groups)
                (NaN for groups an example does not have). Default: False
            return_standard_error (bool, optional): Also return the standard error
                of every group's score (nats), shape (B, n_groups), estimated from
                the independent chains of the run (``SigmaOptions.chains``; NaN
                with a single chain, 0 for absent groups). Default: False
            show_progress (bool, optional): Show a progress bar. Default: False
            token_mask (Tensor, optional): (B, T) mask of real tokens for inputs of
                shape (B, T, ...): padded positions are never perturbed nor scored and
                are left out of the loss of a per-position output. Default: None
            options (SigmaOptions, optional): Every hyper-parameter of the
                optimisation in one object, e.g. ``captum_sigma.REFERENCE_OPTIONS``
                (the reference implementation's run); the flat arguments above
                override its fields. Default: None (``SigmaOptions()``)

        Returns:
            *Tensor* or *tuple[Tensor, ...]* of **attributions**, and with
            ``return_sigma=True`` the tuple ``(attributions, sigma)``; with
            ``return_standard_error=True`` the standard error follows last, e.g.
            ``(attributions, sigma, standard_error)``.

        Examples::

            >>> sigma = SigmaAttribution(encoder)          # encoder(embeds, mask)
            >>> attr = sigma.attribute(embeds, additional_forward_args=(mask,),
            ...                        token_mask=mask)
            >>> token_scores = attr.sum(-1)                # (B, T), larger = important

            >>> from captum_sigma import REFERENCE_OPTIONS    # the reference run
            >>> attr = sigma.attribute(embeds, options=REFERENCE_OPTIONS,
            ...                        n_steps=100)            # flat ones override
        """
        is_tuple = isinstance(inputs, tuple)
        formatted = common.format_tensors("inputs", inputs)
        for inp in formatted:
            if not inp.is_floating_point():
                raise TypeError(
                    f"SigmaAttribution perturbs floating inputs, got {inp.dtype}; "
                    "to explain token ids use LayerSigmaAttribution on the embedding "
                    "layer"
                )
        batch = common.check_batch("inputs", formatted)
        common.check_devices("inputs", formatted, self.forward_func)
        common.check_target(target, batch)
        mask = common.check_token_mask(token_mask, batch)
        options = common.resolve_options(options, locals())
        if feature_mask is None:
            groups, n_groups = common.default_groups(formatted, mask)
        else:
            groups, n_groups = common.mask_groups(feature_mask, formatted, mask)
        args = common.format_args(additional_forward_args)
        common.warn_if_training(self.forward_func)

        def build(start: int, end: int) -> Tuple[SigmaProblem, Tensor]:
            return self._chunk_problem(
                formatted,
                groups,
                n_groups,
                target,
                args,
                mask,
                regularization,
                start,
                end,
                batch,
            )

        scores, sigma, error = common.attribute_groups(
            formatted,
            build,
            options,
            internal_batch_size,
            show_progress,
            return_input_shape,
            "Sigma attribution",
        )
        if return_input_shape:
            attributions = _format_output(is_tuple, scores)
        else:
            attributions = scores[0]
        extra = (sigma,) if return_sigma else ()
        extra += (error,) if return_standard_error else ()
        return (attributions, *extra) if extra else attributions

    def _chunk_problem(
        self,
        inputs: Tuple[Tensor, ...],
        groups: Tuple[Tensor, ...],
        n_groups: int,
        target: TargetType,
        args: Optional[Tuple[Any, ...]],
        token_mask: Optional[Tensor],
        regularization: Union[None, float, Tensor],
        start: int,
        end: int,
        batch: int,
    ) -> Tuple[SigmaProblem, Tensor]:
        chunk_inputs = tuple(inp[start:end].detach() for inp in inputs)
        chunk_target = common.slice_batch(target, start, end, batch)
        chunk_args = common.slice_batch(args, start, end, batch)
        forward_func = self.forward_func

        def hidden_for(chunk_target: TargetType, chunk_args: Any) -> HiddenFunction:
            repeated = common.RepeatedCall((), chunk_target, chunk_args)

            def hidden_fn(perturbed: Tuple[Tensor, ...], n_repeats: int) -> Tensor:
                _, repeated_target, repeated_args = repeated(n_repeats)
                output = _run_forward(forward_func, perturbed, None, repeated_args)
                output = common.check_output(output, perturbed[0].shape[0])
                return common.select_target(output, repeated_target)

            return hidden_fn

        def restrict(rows: Tensor) -> HiddenFunction:
            size = end - start
            return hidden_for(
                common.take_rows(chunk_target, rows, size),
                common.take_rows(chunk_args, rows, size),
            )

        hidden_fn = hidden_for(chunk_target, chunk_args)
        with torch.no_grad():
            clean = hidden_fn(chunk_inputs, 1)
        problem = SigmaProblem(
            inputs=chunk_inputs,
            groups=tuple(g[start:end] for g in groups),
            n_groups=n_groups,
            hidden_fn=hidden_fn,
            regularization=common.check_regularization(regularization, clean),
            output_mask=None if token_mask is None else token_mask[start:end],
            restrict=restrict,
        )
        return problem, clean
