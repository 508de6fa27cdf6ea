#!/usr/bin/env python3
"""LayerSigmaAttribution: sigma attribution of a layer's activations."""

from typing import Any, Callable, List, Optional, Tuple, Union

import torch
from captum._utils.common import _format_output, _run_forward
from captum._utils.gradient import _forward_layer_eval
from captum._utils.typing import TargetType
from captum.attr import LayerAttribution, PerturbationAttribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_sigma.attr import _common as common
from captum_sigma.attr._layer_hooks import (
    StopForward,
    explained_output,
    replaced_activations,
)
from captum_sigma.engine import SigmaOptions, SigmaProblem

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

    @log_usage()
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        n_steps: int = SigmaOptions.n_steps,
        lr: float = SigmaOptions.lr,
        n_samples: int = SigmaOptions.n_samples,
        scale: float = SigmaOptions.scale,
        rate: float = SigmaOptions.rate,
        regularization: Union[None, float, Tensor] = None,
        seed: int = SigmaOptions.seed,
        internal_batch_size: Optional[int] = None,
        return_input_shape: bool = True,
        return_sigma: bool = False,
        show_progress: bool = False,
        selection: str = SigmaOptions.selection,
        init: str = SigmaOptions.init,
        warm_start_probes: int = SigmaOptions.warm_start_probes,
        warm_start_rounds: int = SigmaOptions.warm_start_rounds,
        optimizer: str = SigmaOptions.optimizer,
        token_mask: Optional[Tensor] = None,
        explained_layer: Optional[nn.Module] = None,
        attribute_to_layer_input: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, ...], Tuple[Any, Tensor]]:
        r"""
        Args:
            inputs (Tensor or tuple[Tensor, ...]): What ``forward_func`` takes, batch
                first (e.g. token ids of shape (B, T)).
            target, additional_forward_args, n_steps, lr, n_samples, scale, rate,
            regularization, seed, internal_batch_size, return_input_shape,
            return_sigma, show_progress, selection, init, warm_start_probes,
            warm_start_rounds, optimizer: As in
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
            or ``(attributions, sigma)`` with ``return_sigma=True``.
        """
        formatted = common.format_tensors("inputs", inputs)
        batch = common.check_batch("inputs", formatted)
        common.check_devices("inputs", formatted, self.layer)
        self._check_not_data_parallel()
        common.check_target(target, batch)
        mask = common.check_token_mask(token_mask, batch)
        if explained_layer is not None and not isinstance(explained_layer, nn.Module):
            raise TypeError("explained_layer must be a torch.nn.Module")
        options = common.make_options(
            n_steps=n_steps,
            lr=lr,
            n_samples=n_samples,
            scale=scale,
            rate=rate,
            seed=seed,
            selection=selection,
            init=init,
            warm_start_probes=warm_start_probes,
            warm_start_rounds=warm_start_rounds,
            optimizer=optimizer,
        )
        args = common.format_args(additional_forward_args)
        common.warn_if_training(self.forward_func)
        chunk = common.chunk_size_for(internal_batch_size, n_samples, batch)

        def build(start: int, end: int) -> Tuple[SigmaProblem, Tensor]:
            return self._chunk_problem(
                formatted,
                target,
                args,
                mask,
                regularization,
                explained_layer,
                attribute_to_layer_input,
                start,
                end,
                batch,
            )

        with common.isolated_rng_and_grad(formatted):
            results = common.solve_in_chunks(
                batch, chunk, build, options, show_progress, "Layer sigma attribution"
            )
        sigma, sizes, groups = common.concat_results(results)
        if return_input_shape:
            dtypes = [activation.dtype for activation in results[0][0].inputs]
            scores = common.scores_in_input_shape(sigma, groups, scale, torch.float32)
            attributions = _format_output(
                len(scores) > 1, tuple(s.to(d) for s, d in zip(scores, dtypes))
            )
        else:
            attributions = common.group_scores(sigma, sizes, scale)
        return (attributions, sigma) if return_sigma else attributions

    def _check_not_data_parallel(self) -> None:
        if isinstance(self.forward_func, nn.DataParallel) or (
            self.device_ids is not None and len(self.device_ids) > 1
        ):
            raise ValueError(
                "device_ids: LayerSigmaAttribution does not support DataParallel "
                "replicas; pass the underlying module (use torch.distributed to scale "
                "out)"
            )

    def _chunk_problem(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        args: Optional[Tuple[Any, ...]],
        token_mask: Optional[Tensor],
        regularization: Union[None, float, Tensor],
        explained_layer: Optional[nn.Module],
        attribute_to_layer_input: bool,
        start: int,
        end: int,
        batch: int,
    ) -> Tuple[SigmaProblem, Tensor]:
        chunk_inputs = tuple(inp[start:end] for inp in inputs)
        chunk_target = common.slice_batch(target, start, end, batch)
        chunk_args = common.slice_batch(args, start, end, batch)
        chunk_mask = None if token_mask is None else token_mask[start:end]
        layer_inputs = self._layer_activations(
            chunk_inputs, chunk_args, attribute_to_layer_input
        )
        hidden_fn = self._hidden_function(
            chunk_inputs,
            chunk_target,
            chunk_args,
            explained_layer,
            attribute_to_layer_input,
        )
        with torch.no_grad():
            clean = hidden_fn(layer_inputs, 1)
        groups, n_groups = common.default_groups(layer_inputs, chunk_mask)
        problem = SigmaProblem(
            inputs=layer_inputs,
            groups=groups,
            n_groups=n_groups,
            hidden_fn=hidden_fn,
            regularization=common.check_regularization(regularization, clean),
            output_mask=chunk_mask,
        )
        return problem, clean

    def _layer_activations(
        self,
        inputs: Tuple[Tensor, ...],
        args: Optional[Tuple[Any, ...]],
        attribute_to_layer_input: bool,
    ) -> Tuple[Tensor, ...]:
        with torch.no_grad():
            activations = _forward_layer_eval(
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

    def _hidden_function(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        args: Optional[Tuple[Any, ...]],
        explained_layer: Optional[nn.Module],
        attribute_to_layer_input: bool,
    ) -> Callable[[Tuple[Tensor, ...], int], Tensor]:
        repeated = common.RepeatedCall(inputs, target, args)

        def hidden_fn(activations: Tuple[Tensor, ...], n_repeats: int) -> Tensor:
            repeated_inputs, repeated_target, repeated_args = repeated(n_repeats)
            rows = repeated_inputs[0].shape[0]
            with (
                replaced_activations(self.layer, activations, attribute_to_layer_input),
                explained_output(explained_layer) as store,
            ):
                try:
                    output = _run_forward(
                        self.forward_func, repeated_inputs, None, repeated_args
                    )
                except StopForward:
                    output = store["output"]
                else:
                    if explained_layer is not None:
                        raise ValueError(
                            "explained_layer was not called by the forward function"
                        )
            output = common.check_output(output, rows)
            return common.select_target(output, repeated_target)

        return hidden_fn
