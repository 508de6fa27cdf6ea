#!/usr/bin/env python3
"""SigmaAttribution: Captum adapter of the sigma engine for input-level attribution."""

from typing import Any, Callable, Literal, Optional, Tuple, Union, overload

import torch
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor

from captum_sigma._captum_compat import TargetType, format_output, run_forward
from captum_sigma.attr import common
from captum_sigma.engine import HiddenFunction, SigmaOptions, SigmaProblem

__all__ = ["SigmaAttribution"]

#: Attributions: input-shaped (a tuple for tuple inputs), or ``(B, n_groups)``
#: group scores with ``return_input_shape=False``.
Attributions = Union[Tensor, Tuple[Tensor, ...]]


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

    **Options.** Every setting of the optimisation is one argument of
    ``attribute``, ``options``: a :class:`~captum_sigma.SigmaOptions` (default
    ``SigmaOptions()``), with no flat copy of its fields. Captum uses both styles:
    ``Lime`` takes strategy objects (interpretable model, similarity, perturbation)
    in ``__init__``, ``IntegratedGradients`` flat arguments in ``attribute``.
    Sigma's settings are a run's budget and sampling (``n_steps``, ``n_samples``,
    ``chains``, ``tol``, ``seed``, ...), which Captum takes per call (IG's
    ``n_steps``, Lime's ``n_samples``): hence ``attribute``, not ``__init__``.
    They are sixteen interdependent fields (rows per forward pass = ``n_samples``
    × ``chains``; ``tol`` with ``max_steps``; the warm start's probes) that
    ``SigmaOptions`` validates together when it is built: hence one object, as
    Lime's strategies are objects. It is frozen and hashable, the same record that
    the text presets, the corpus jobs' identity and the evaluation's settings
    store, so a run is reproduced by passing one value; a variant is
    ``dataclasses.replace(options, seed=1)``. One way to set a field means no
    precedence rule between an object and a keyword.

    The arguments after ``options`` are keyword-only; ``return_sigma`` and
    ``return_standard_error`` select the return type (``typing.overload``
    signatures, as Captum's ``return_convergence_delta``).

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

    # The overloads type the return value by ``return_sigma`` and
    # ``return_standard_error``, as Captum's ``IntegratedGradients.attribute`` by
    # ``return_convergence_delta``; the last one takes plain bools.
    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[False] = False,
        return_standard_error: Literal[False] = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
    ) -> Attributions: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[True],
        return_standard_error: Literal[False] = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
    ) -> Tuple[Attributions, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[False] = False,
        return_standard_error: Literal[True],
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
    ) -> Tuple[Attributions, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[True],
        return_standard_error: Literal[True],
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
    ) -> Tuple[Attributions, Tensor, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: bool = False,
        return_standard_error: bool = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
    ) -> Union[
        Attributions, Tuple[Attributions, Tensor], Tuple[Attributions, Tensor, Tensor]
    ]: ...

    @log_usage()
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        feature_mask: Union[None, Tensor, Tuple[Tensor, ...]] = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: bool = False,
        return_standard_error: bool = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
    ) -> Union[
        Attributions, Tuple[Attributions, Tensor], Tuple[Attributions, Tensor, Tensor]
    ]:
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
            options (SigmaOptions, optional): Every setting of the optimisation in
                one object (see :class:`~captum_sigma.SigmaOptions` for the fields'
                meaning and defaults), e.g. ``captum_sigma.REFERENCE_OPTIONS`` (the
                reference implementation's run) or
                ``dataclasses.replace(REFERENCE_OPTIONS, n_steps=100)``.
                Default: None (``SigmaOptions()``)
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

        Returns:
            *Tensor* or *tuple[Tensor, ...]* of **attributions**, and with
            ``return_sigma=True`` the tuple ``(attributions, sigma)``; with
            ``return_standard_error=True`` the standard error follows last, e.g.
            ``(attributions, sigma, standard_error)``.

        Raises:
            ~captum_sigma.attr.TargetError: A malformed ``target`` (a
                ``ValueError`` that is also Captum's ``AssertionError``).
            ValueError, TypeError: Any other invalid argument, naming it.

        Examples::

            >>> sigma = SigmaAttribution(encoder)          # encoder(embeds, mask)
            >>> attr = sigma.attribute(embeds, additional_forward_args=(mask,),
            ...                        token_mask=mask)
            >>> token_scores = attr.sum(-1)                # (B, T), larger = important

            >>> from dataclasses import replace
            >>> from captum_sigma import REFERENCE_OPTIONS    # the reference run
            >>> attr = sigma.attribute(
            ...     embeds, options=replace(REFERENCE_OPTIONS, n_steps=100)
            ... )
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
        options = common.check_options(options)
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
            attributions = format_output(is_tuple, scores)
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
                output = run_forward(forward_func, perturbed, None, repeated_args)
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
