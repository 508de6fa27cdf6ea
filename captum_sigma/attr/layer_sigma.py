#!/usr/bin/env python3
"""LayerSigmaAttribution: sigma attribution of a layer's activations."""

from typing import Any, Callable, List, Literal, Optional, Tuple, Union, overload

import torch
from captum.attr import LayerAttribution, PerturbationAttribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_sigma._captum_compat import TargetType, forward_layer_eval, run_forward
from captum_sigma.attr import common
from captum_sigma.attr.hooks import StopForward, explained_output, replaced_activations
from captum_sigma.attr.sigma import Attributions, SigmaAttribution
from captum_sigma.engine import SigmaOptions

__all__ = ["LayerSigmaAttribution"]


class LayerSigmaAttribution(LayerAttribution, PerturbationAttribution):
    r"""
    Sigma attribution (Guan et al., ICML 2019) of a layer's output, e.g. a
    transformer's embedding layer, while ``inputs`` are whatever ``forward_func`` takes
    (token ids). Each position of the layer's (B, T, D) output gets one noise scale
    ``σ_t``; the returned attributions have the layer's shape, every element of
    position ``t`` holding ``log(scale / σ_t)``, so ``.sum(-1)`` gives per-token
    scores in nats (larger = more important).

    With ``explained_layer`` the explained output is another module's output (the
    forward pass stops there): the paper's "information of each word in layer ℓ".

    Like ``LayerIntegratedGradients`` over ``IntegratedGradients``, it computes the
    layer's activations and delegates to :class:`SigmaAttribution` with a forward
    function that makes the layer return the perturbed activations. It takes the
    optimisation's settings the same way, as one ``options``
    (:class:`~captum_sigma.SigmaOptions`; see :class:`SigmaAttribution` for why),
    and overloads its return type on ``return_sigma`` / ``return_standard_error``.

    Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
    http://proceedings.mlr.press/v97/guan19a.html

    Examples::

        >>> sigma = LayerSigmaAttribution(forward_func, model.bert.embeddings)
        >>> attr = sigma.attribute(input_ids, target=1,
        ...                        additional_forward_args=(attention_mask,),
        ...                        token_mask=attention_mask)
        >>> token_scores = attr.sum(-1)
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        layer: nn.Module,
        device_ids: Union[None, List[int]] = None,
    ) -> None:
        r"""
        Args:
            forward_func (Callable): The forward function of the model.
            layer (torch.nn.Module): The layer whose output (or input, with
                ``attribute_to_layer_input=True``) is perturbed.
            device_ids (list[int], optional): Kept for Captum compatibility;
                DataParallel replicas are not supported (a ValueError says so).
        """
        LayerAttribution.__init__(self, forward_func, layer, device_ids)
        PerturbationAttribution.__init__(self, forward_func)

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    # Overloads on ``return_sigma`` / ``return_standard_error``, as in
    # :meth:`SigmaAttribution.attribute`.
    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[False] = False,
        return_standard_error: Literal[False] = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
        explained_layer: Optional[nn.Module] = None,
        attribute_to_layer_input: bool = False,
    ) -> Attributions: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[True],
        return_standard_error: Literal[False] = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
        explained_layer: Optional[nn.Module] = None,
        attribute_to_layer_input: bool = False,
    ) -> Tuple[Attributions, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[False] = False,
        return_standard_error: Literal[True],
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
        explained_layer: Optional[nn.Module] = None,
        attribute_to_layer_input: bool = False,
    ) -> Tuple[Attributions, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: Literal[True],
        return_standard_error: Literal[True],
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
        explained_layer: Optional[nn.Module] = None,
        attribute_to_layer_input: bool = False,
    ) -> Tuple[Attributions, Tensor, Tensor]: ...

    @overload
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: bool = False,
        return_standard_error: bool = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
        explained_layer: Optional[nn.Module] = None,
        attribute_to_layer_input: bool = False,
    ) -> Union[
        Attributions, Tuple[Attributions, Tensor], Tuple[Attributions, Tensor, Tensor]
    ]: ...

    @log_usage()
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        options: Optional[SigmaOptions] = None,
        *,
        regularization: Union[None, float, Tensor] = None,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: bool = False,
        return_standard_error: bool = False,
        show_progress: bool = False,
        token_mask: Optional[Tensor] = None,
        explained_layer: Optional[nn.Module] = None,
        attribute_to_layer_input: bool = False,
    ) -> Union[
        Attributions, Tuple[Attributions, Tensor], Tuple[Attributions, Tensor, Tensor]
    ]:
        r"""
        Args:
            inputs (Tensor or tuple[Tensor, ...]): What ``forward_func`` takes, batch
                first (e.g. token ids of shape (B, T)).
            target, additional_forward_args, options, regularization,
            internal_batch_size, return_input_shape, return_sigma,
            return_standard_error, show_progress: As in
                :meth:`SigmaAttribution.attribute`; ``return_input_shape=False``
                returns (B, n_groups) group scores, i.e. (B, T) for a (B, T, D) layer.
            token_mask (Tensor, optional): (B, T) mask of real tokens (e.g. the
                attention mask): padded positions are never perturbed nor scored and,
                when the explained output is per position (B, T, ...), left out of
                the loss. Default: None
            explained_layer (torch.nn.Module, optional): Explain the output of this
                module (its first tensor if it returns a tuple) instead of
                ``forward_func``'s output; the forward pass stops there. ``target``
                then selects from that output. Default: None
            attribute_to_layer_input (bool, optional): Perturb the layer's input
                instead of its output. Default: False

        Returns:
            Layer-shaped attributions (a tuple if the layer has several tensors),
            or ``(attributions, sigma)`` with ``return_sigma=True`` (and the
            standard error last with ``return_standard_error=True``).

        Raises:
            ~captum_sigma.attr.TargetError: A malformed ``target`` (a
                ``ValueError`` that is also Captum's ``AssertionError``).
            ValueError, TypeError: Any other invalid argument, naming it.
        """
        formatted = common.format_tensors("inputs", inputs)
        batch = common.check_batch("inputs", formatted)
        common.check_devices("inputs", formatted, self.layer)
        self._check_not_data_parallel()
        common.check_target(target, batch)
        common.check_token_mask(token_mask, batch)
        if explained_layer is not None and not isinstance(explained_layer, nn.Module):
            raise TypeError("explained_layer must be a torch.nn.Module")
        options = common.check_options(options)
        args = common.format_args(additional_forward_args)
        common.warn_if_training(self.forward_func)
        with common.isolated_rng_and_grad(formatted):  # a training-mode forward
            activations = self._layer_activations(  # draws dropout masks
                formatted, args, attribute_to_layer_input
            )
            inner = SigmaAttribution(
                self._forward_with_activations(
                    len(activations),
                    len(formatted),
                    explained_layer,
                    attribute_to_layer_input,
                )
            )
            return inner.attribute.__wrapped__(  # type: ignore[attr-defined]
                inner,
                activations if len(activations) > 1 else activations[0],
                target=target,
                additional_forward_args=(*formatted, *(args or ())),
                regularization=regularization,
                internal_batch_size=internal_batch_size,
                return_input_shape=return_input_shape,
                return_sigma=return_sigma,
                return_standard_error=return_standard_error,
                show_progress=show_progress,
                token_mask=token_mask,
                options=options,
            )

    def _check_not_data_parallel(self) -> None:
        if isinstance(self.forward_func, nn.DataParallel) or (
            self.device_ids is not None and len(self.device_ids) > 1
        ):
            raise ValueError(
                "device_ids: LayerSigmaAttribution does not support DataParallel "
                "replicas; pass the underlying module (use torch.distributed to scale "
                "out)"
            )

    def _layer_activations(
        self,
        inputs: Tuple[Tensor, ...],
        args: Optional[Tuple[Any, ...]],
        attribute_to_layer_input: bool,
    ) -> Tuple[Tensor, ...]:
        with torch.no_grad():
            activations = forward_layer_eval(
                self.forward_func,
                inputs,
                self.layer,
                args,
                attribute_to_layer_input=attribute_to_layer_input,
            )
        for activation in activations:
            if not activation.is_floating_point():
                raise ValueError(
                    f"layer: its {'input' if attribute_to_layer_input else 'output'} "
                    f"is {activation.dtype}, not floating; choose a layer whose "
                    "activations can carry Gaussian noise (e.g. the embeddings)"
                )
        common.check_batch("layer activations", activations)
        return tuple(a.detach() for a in activations)

    def _forward_with_activations(
        self,
        n_activations: int,
        n_inputs: int,
        explained_layer: Optional[nn.Module],
        attribute_to_layer_input: bool,
    ) -> Callable[..., Tensor]:
        """``f(*activations, *inputs, *args)``: ``forward_func(*inputs, *args)`` with
        the layer returning ``activations`` (stopped at ``explained_layer``).

        ``self.forward_func`` is read at call time (``LLMGradientAttribution``
        swaps it on a copy of the method).
        """

        def forward(*arguments: Any) -> Tensor:
            activations = arguments[:n_activations]
            inputs = arguments[n_activations : n_activations + n_inputs]
            args = arguments[n_activations + n_inputs :]
            with (
                replaced_activations(
                    self.layer, activations, attribute_to_layer_input
                ) as replacement,
                explained_output(explained_layer) as store,
            ):
                try:
                    output = run_forward(self.forward_func, inputs, None, args or None)
                except StopForward:
                    if not replacement["replaced"]:
                        raise ValueError(
                            "explained_layer runs before the perturbed layer: its "
                            "output does not depend on the perturbation (every score "
                            "would be 0); explain a module after the layer"
                        ) from None
                    return store["output"]
            if explained_layer is not None:
                raise ValueError(
                    "explained_layer was not called by the forward function"
                )
            return output

        return forward
