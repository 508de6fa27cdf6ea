r"""The registry of attribution methods compared by the runner.

Each method is one :class:`MethodSpec`: its name, how to build the Captum object
from the counted forward function and the embedding layer, the extra keyword
arguments of its ``attribute`` call, and whether its scores are signed.

Shared conventions (``docs/evaluation.md``):

- every Captum method explains the same scalar, the probability (or, with
  ``output="logit"``, the logit) of the predicted class, computed by
  :func:`classifier_forward` from ``(input_ids, attention_mask)``;
- the row ``"Sigma"`` (and every row of ``sigma_settings``) is what
  :class:`~captum_sigma.text.TextExplainer` returns, by construction: the
  explainer's own :meth:`~captum_sigma.text.TextExplainer.attribute_tokens`
  on its default output (:data:`~captum_sigma.text.DEFAULT_TEXT_OUTPUT`: the
  predicted class's probability, self-normalised, no ``r``), with the row's
  options (``"Sigma"``: :data:`~captum_sigma.text.DEFAULT_TEXT_OPTIONS`, rate 1);
  the row :data:`SIGMA_LOGIT_ROW` is the previous default (the predicted class's
  logit divided by ``r`` from the data sample
  :func:`~captum_sigma.text.default_data_sample`, ``SigmaOptions()``, rate 0.1)
  and :data:`SIGMA_PROBABILITY_ROW` the probability, self-normalised, at
  ``SigmaOptions()`` (rate 0.1);
- gradient methods work at the output of the embedding layer (Captum's Layer*
  classes on ``model.bert.embeddings``: word + position + token-type embeddings
  after LayerNorm) and their (B, T, D) attributions are reduced to per-token
  scores by summing over the hidden dimension D (Saliency: the sum of absolute
  gradients, i.e. the L1 norm);
- the baseline is ``[PAD]`` at every eligible token with [CLS]/[SEP] kept (IG,
  DeepLift, FeatureAblation, Lime and KernelShap all remove a token by putting
  ``[PAD]`` there, attention mask unchanged);
- perturbation methods use one feature per eligible token.

A user adds any Captum attribution object, any callable
``f(input_ids, attention_mask, target) -> scores`` or a :class:`MethodSpec`
(see :func:`as_method_spec`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch
from captum.attr import (
    FeatureAblation,
    KernelShap,
    LayerDeepLift,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Lime,
)
from torch import Tensor, nn

from captum_sigma._captum_compat import LinearModel
from captum_sigma.attr import LayerSigmaAttribution
from captum_sigma.attr.common import seeded_rng
from captum_sigma.engine import PREVIOUS_DEFAULT_OPTIONS, SigmaOptions
from captum_sigma.evaluation.names import (
    DEFAULT_METHOD_NAMES,
    SIGMA_LOGIT_ROW,
    SIGMA_PROBABILITY_ROW,
)
from captum_sigma.evaluation.tokens import TokenBatch
from captum_sigma.text import (
    DEFAULT_TEXT_OPTIONS,
    DEFAULT_TEXT_OUTPUT,
    TextExplainer,
    default_data_sample,
)
from captum_sigma.text.model import LogitsOutput

__all__ = [
    "DEFAULT_METHOD_NAMES",
    "SIGMA_LOGIT_ROW",
    "SIGMA_PROBABILITY_ROW",
    "MethodSpec",
    "as_method_spec",
    "classifier_forward",
    "default_methods",
    "linear_surrogate",
    "sentence_seed",
]

BuildFunction = Callable[[nn.Module, nn.Module], Any]
KwargsFunction = Callable[[TokenBatch, int], dict]


def _no_kwargs(batch: TokenBatch, seed: int) -> dict:
    return {}


@dataclass(frozen=True)
class MethodSpec:
    r"""How the comparison runner builds and calls one attribution method.

    Attributes:
        name (str): Row name in the tables.
        build (Callable): ``build(forward, layer)`` returns the method object:
                a Captum attribution (anything with ``attribute``) or a callable
                ``f(input_ids, attention_mask, target, **kwargs)``. ``forward``
                is the counted :func:`classifier_forward` module (its passes are
                counted) and ``layer`` the embedding layer.
        kwargs (Callable, optional): ``kwargs(batch, seed)`` returns the extra
                keyword arguments of the call (baselines, feature_mask,
                n_samples, ...); ``target`` and
                ``additional_forward_args=(attention_mask,)`` are always passed.
                Default: none.
        signed (bool, optional): Scores may be negative; the tables then also
                report the method ranked by ``|score|``. Default: True.
        stochastic (bool, optional): Results depend on the seed; the runner
                measures seed stability. Default: False.
        per_example (bool, optional): Call the method one sentence at a time
                (trimmed to its length) with the torch RNG seeded by
                :func:`sentence_seed`, so sampling methods give the same result
                whatever the batch. Default: False.
        abs_elements (bool, optional): Take ``|a|`` element-wise before summing
                over the hidden dimension (Saliency). Default: False.
        convergence_delta (bool, optional): Pass
                ``return_convergence_delta=True`` and record ``|delta|``.
                Default: False.
        counted (bool, optional): ``build`` uses the ``forward`` it is given,
                so its passes are counted. Default: True.
        settings (dict, optional): Hyper-parameters, for the report.
    """

    name: str
    build: BuildFunction
    kwargs: KwargsFunction = _no_kwargs
    signed: bool = True
    stochastic: bool = False
    per_example: bool = False
    abs_elements: bool = False
    convergence_delta: bool = False
    counted: bool = True
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not callable(self.build):
            raise TypeError(f"build of method {self.name!r} must be callable")
        if not callable(self.kwargs):
            raise TypeError(f"kwargs of method {self.name!r} must be callable")

    def scores(
        self, method: Any, batch: TokenBatch, seed: int = 0
    ) -> tuple[Tensor, Tensor | None]:
        r"""Per-token scores of a batch, zero at non-eligible positions.

        Args:
            method (object): What :attr:`build` returned.
            batch (TokenBatch): The sentences and their targets.
            seed (int, optional): Seed of the run. Default: 0.

        Returns:
            (scores, delta): Float64 scores of shape (B, T) and, with
            :attr:`convergence_delta`, ``|delta|`` of shape (B,) (else None).
        """
        if not self.per_example:
            return self._call(method, batch, seed)
        scores = torch.zeros(batch.input_ids.shape, dtype=torch.float64)
        deltas = []
        for row in range(len(batch)):
            single = batch.select([row])
            row_seed = sentence_seed(seed, int(single.indices[0]))
            with seeded_rng(row_seed, batch.input_ids.device):
                row_scores, delta = self._call(method, single, row_seed)
            scores[row, : row_scores.shape[1]] = row_scores[0]
            if delta is not None:
                deltas.append(delta)
        return scores, torch.cat(deltas) if deltas else None

    def _call(
        self, method: Any, batch: TokenBatch, seed: int
    ) -> tuple[Tensor, Tensor | None]:
        kwargs = dict(self.kwargs(batch, seed))
        if self.convergence_delta:
            kwargs["return_convergence_delta"] = True
        if hasattr(method, "attribute"):
            output = method.attribute(
                batch.input_ids,
                target=batch.target,
                additional_forward_args=(batch.attention_mask,),
                **kwargs,
            )
        elif callable(method):
            output = method(
                batch.input_ids, batch.attention_mask, batch.target, **kwargs
            )
        else:
            raise TypeError(
                f"method {self.name!r}: build must return a Captum attribution or "
                f"a callable, got {type(method).__name__}"
            )
        delta = None
        if self.convergence_delta:
            output, delta = output
            delta = delta.detach().abs().double().cpu().reshape(-1)
        return self._reduce(output, batch), delta

    def _reduce(self, output: Any, batch: TokenBatch) -> Tensor:
        if isinstance(output, tuple) and len(output) == 1:
            output = output[0]
        if not isinstance(output, Tensor):
            output = torch.as_tensor(np.asarray(output))
        shape = tuple(batch.input_ids.shape)
        if output.dim() < 2 or tuple(output.shape[:2]) != shape:
            raise ValueError(
                f"method {self.name!r} returned shape {tuple(output.shape)}; "
                f"expected (batch, tokens) = {shape} or (batch, tokens, ...)"
            )
        output = output.detach().double()
        if self.abs_elements:
            output = output.abs()
        if output.dim() > 2:
            output = output.flatten(2).sum(dim=2)
        if not torch.isfinite(output[batch.eligible]).all():
            raise ValueError(f"method {self.name!r} returned non-finite scores")
        return (output * batch.eligible).cpu()


def sentence_seed(seed: int, index: int) -> int:
    """A 31-bit seed for sentence ``index`` of a run with seed ``seed``."""
    return zlib.crc32(f"{int(seed)}:{int(index)}".encode()) & 0x7FFFFFFF


class _ClassifierForward(nn.Module):
    """``(input_ids, attention_mask) -> (B, C)`` probabilities or logits, counted.

    The logits are :class:`captum_sigma.text.model.LogitsOutput`'s, the forward
    that :class:`~captum_sigma.text.TextExplainer` explains.
    """

    def __init__(self, model: nn.Module, output: str, tokenizer: Any = None) -> None:
        super().__init__()
        self.model = model
        self.output = output
        self.tokenizer = tokenizer
        self.logits = LogitsOutput(model)
        self.forward_rows = 0
        self.backward_rows = 0

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        rows = int(input_ids.shape[0])
        self.forward_rows += rows
        if torch.is_grad_enabled():
            self.backward_rows += rows
        logits = self.logits(input_ids, attention_mask)
        return logits.softmax(dim=-1) if self.output == "proba" else logits

    def reset_counts(self) -> None:
        self.forward_rows = 0
        self.backward_rows = 0


def classifier_forward(
    model: nn.Module, output: str = "proba", tokenizer: Any = None
) -> nn.Module:
    r"""The forward function every compared method explains.

    Args:
        model (nn.Module): A sequence classifier called as
                ``model(input_ids=..., attention_mask=...)`` returning logits
                (or an object with ``.logits``), e.g. a Hugging Face
                ``BertForSequenceClassification``.
        output (str, optional): ``"proba"`` (softmax probabilities, the
                quantity the removal metrics measure) or ``"logit"``.
                Default: "proba".
        tokenizer (object, optional): The texts' tokenizer, kept as
                ``forward.tokenizer`` for methods that tokenise text of their own
                (the Sigma rows estimate ``r`` from a data sample). Default: None.

    Returns:
        forward (nn.Module): ``forward(input_ids, attention_mask) -> (B, C)``.
        It counts the rows it sees in ``forward_rows`` and, among them, those
        run with autograd enabled (each followed by one backward pass) in
        ``backward_rows``.

    Examples::

        >>> forward = classifier_forward(model)
        >>> my_method = LayerGradientShap(forward, model.bert.embeddings)
        >>> compare(model, tokenizer, texts, methods={"GradientShap": my_method})
    """
    if output not in ("proba", "logit"):
        raise ValueError(f"output must be 'proba' or 'logit', got {output!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return _ClassifierForward(model, output, tokenizer)


def _weighted_ridge_train_fn(
    model: LinearModel,
    dataloader: Any,
    construct_kwargs: dict,
    alpha: float = 0.0,
    **fit_kwargs: Any,
) -> dict:
    """Closed-form weighted ridge regression with an unpenalised intercept."""
    xs, ys, ws = [], [], []
    for data in dataloader:
        x, y = data[0], data[1]
        w = data[2] if len(data) == 3 else torch.ones(x.shape[0])
        xs.append(x.double().reshape(x.shape[0], -1))
        ys.append(y.double().reshape(-1))
        ws.append(w.double().reshape(-1))
    x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
    total = w.sum().clamp_min(1e-12)
    x_mean = (w[:, None] * x).sum(0) / total
    y_mean = (w * y).sum() / total
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ (w[:, None] * xc) + alpha * torch.eye(x.shape[1], dtype=x.dtype)
    coef = torch.linalg.pinv(gram) @ (xc.T @ (w * yc))
    intercept = y_mean - x_mean @ coef
    dtype = torch.get_default_dtype()
    model._construct_model_params(
        weight_values=coef.reshape(1, -1).to(dtype),
        bias_value=intercept.reshape(1).to(dtype),
        **construct_kwargs,
    )
    return {}


def linear_surrogate(alpha: float = 0.0) -> LinearModel:
    r"""Captum interpretable model: closed-form weighted (ridge) least squares.

    scikit-learn is not a dependency of captum_sigma, so Lime's default
    (``SkLearnLasso``) and KernelShap's (``SkLearnLinearRegression``) are
    replaced by this exact solver: ``alpha=0`` is KernelShap's weighted linear
    regression, ``alpha=1`` the ridge of the original ``lime`` package.

    Args:
        alpha (float, optional): L2 penalty of the coefficients. Default: 0.

    Returns:
        LinearModel: For ``Lime(interpretable_model=...)``.
    """
    if not alpha >= 0:
        raise ValueError(f"alpha must be non-negative, got {alpha!r}")

    def train_fn(model: LinearModel, dataloader: Any, construct_kwargs: dict, **kw):
        return _weighted_ridge_train_fn(
            model, dataloader, construct_kwargs, alpha=alpha, **kw
        )

    return LinearModel(train_fn=train_fn)


class _RandomScores:
    """Uniform scores from a per-sentence seeded generator."""

    def __call__(
        self, input_ids: Tensor, attention_mask: Tensor, target: Tensor, seed: int
    ) -> Tensor:
        rng = np.random.default_rng(seed)
        return torch.from_numpy(rng.random(tuple(input_ids.shape)))


class _ExplainerScores:
    """``f(input_ids, attention_mask, target, seed)``: a TextExplainer's scores."""

    def __init__(self, explainer: TextExplainer) -> None:
        self.explainer = explainer
        explainer.regularization()  # r once, before the runner times the method

    def __call__(
        self, input_ids: Tensor, attention_mask: Tensor, target: Tensor, seed: int
    ) -> Tensor:
        scores, _ = self.explainer.attribute_tokens(
            input_ids, attention_mask, target=target.tolist(), seed=seed
        )
        return scores


def _text_tokenizer(name: str, forward: nn.Module) -> Any:
    tokenizer = getattr(forward, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(
            f"method {name!r} explains text: build it with "
            "classifier_forward(model, tokenizer=tokenizer)"
        )
    return tokenizer


def _check_options(options: Any) -> SigmaOptions:
    if not isinstance(options, SigmaOptions):
        raise TypeError(
            f"sigma settings must be SigmaOptions, got {type(options).__name__}"
        )
    return options


def _explainer_spec(
    name: str,
    options: SigmaOptions,
    data: Sequence[str] | None,
    output: str = DEFAULT_TEXT_OUTPUT,
) -> MethodSpec:
    """A Sigma row computed by :class:`TextExplainer` itself (its seed: the run's).

    ``output``: the explainer's ``output`` (default: the ``default`` preset's;
    see :data:`~captum_sigma.text.presets.OUTPUTS`).
    """
    options = _check_options(options)

    def build(forward: nn.Module, layer: nn.Module) -> _ExplainerScores:
        tokenizer = _text_tokenizer(name, forward)
        sample = default_data_sample() if data is None else list(data)
        explainer = TextExplainer(
            forward.model,
            tokenizer,
            data=sample,
            embeddings=layer,
            options=options,
            output=output,
        )
        return _ExplainerScores(explainer)

    if output == "probability":
        explained = "probability of the predicted class"
        regularization = "None (the example's own s^2)"
    else:
        explained = f"{output} of the predicted class / r"
        regularization = "r from " + (
            "default_data_sample()" if data is None else f"{len(data)} given texts"
        )
    settings = {
        "class": f"TextExplainer(..., output={output!r}).attribute_tokens (what "
        "explain() returns)",
        "explained": explained,
        "regularization": regularization,
        **{key: value for key, value in asdict(options).items() if key != "seed"},
        "passes_per_example": options.passes_per_example(),
    }
    return MethodSpec(
        name=name,
        build=build,
        kwargs=lambda batch, seed: {"seed": seed},
        signed=False,
        stochastic=True,
        settings=settings,
    )


def _probability_spec(name: str, options: SigmaOptions, max_rows: int) -> MethodSpec:
    """Sigma on the probability, self-normalised (no ``r``): an extra, named row."""
    options = _check_options(options)

    def kwargs(batch: TokenBatch, seed: int) -> dict:
        return {
            "options": replace(options, seed=seed),
            "token_mask": batch.attention_mask,
            "return_input_shape": False,
            "internal_batch_size": max_rows,
        }

    settings = {
        "class": "LayerSigmaAttribution(classifier_forward(model), embeddings)",
        "explained": "probability of the predicted class",
        "regularization": "None (the example's own s^2)",
        **{key: value for key, value in asdict(options).items() if key != "seed"},
        "passes_per_example": options.passes_per_example(),
    }
    return MethodSpec(
        name=name,
        build=LayerSigmaAttribution,
        kwargs=kwargs,
        signed=False,
        stochastic=True,
        settings=settings,
    )


def _registry(
    ig_steps: int, n_samples: int, lime_alpha: float, max_rows: int
) -> dict[str, Callable[[], MethodSpec]]:
    def baselines(batch: TokenBatch, seed: int) -> dict:
        return {"baselines": batch.baseline_ids}

    def ablation_kwargs(batch: TokenBatch, seed: int) -> dict:
        return {
            "baselines": batch.baseline_ids,
            "feature_mask": batch.feature_mask,
            "perturbations_per_eval": max(1, max_rows // len(batch)),
        }

    def sampling_kwargs(batch: TokenBatch, seed: int) -> dict:
        return {
            "baselines": batch.baseline_ids,
            "feature_mask": batch.feature_mask,
            "n_samples": n_samples,
            "perturbations_per_eval": max(1, min(n_samples, max_rows)),
        }

    def kernel_shap(forward: nn.Module, layer: nn.Module) -> KernelShap:
        method = KernelShap(forward)
        method.interpretable_model = linear_surrogate(0.0)
        return method

    baseline_text = "[PAD] at eligible tokens, [CLS]/[SEP] kept"

    def with_baselines(method_class: str) -> dict:
        """The settings of a method whose only argument is the [PAD] baseline."""
        return {"class": method_class, "baselines": baseline_text}

    sampling_settings = {
        "n_samples": n_samples,
        "baselines": baseline_text,
        "feature_mask": "one feature per eligible token",
        "seed": "torch RNG seeded per sentence",
    }
    return {
        "IntegratedGradients": lambda: MethodSpec(
            name="IntegratedGradients",
            build=lambda forward, layer: LayerIntegratedGradients(forward, layer),
            kwargs=lambda batch, seed: {
                "baselines": batch.baseline_ids,
                "n_steps": ig_steps,
                "internal_batch_size": max(max_rows, len(batch)),
            },
            convergence_delta=True,
            settings={
                "class": "LayerIntegratedGradients(layer=embeddings)",
                "n_steps": ig_steps,
                "method": "gausslegendre",
                "baselines": baseline_text,
            },
        ),
        "Saliency": lambda: MethodSpec(
            name="Saliency",
            build=lambda forward, layer: LayerGradientXActivation(
                forward, layer, multiply_by_inputs=False
            ),
            signed=False,
            abs_elements=True,
            settings={
                "class": "LayerGradientXActivation(multiply_by_inputs=False)",
                "reduction": "sum over D of |gradient| (L1 norm)",
            },
        ),
        "InputXGradient": lambda: MethodSpec(
            name="InputXGradient",
            build=lambda forward, layer: LayerGradientXActivation(forward, layer),
            settings={"class": "LayerGradientXActivation(layer=embeddings)"},
        ),
        "DeepLift": lambda: MethodSpec(
            name="DeepLift",
            build=lambda forward, layer: LayerDeepLift(forward, layer),
            kwargs=baselines,
            settings=with_baselines("LayerDeepLift(layer=embeddings), rescale rule"),
        ),
        "FeatureAblation": lambda: MethodSpec(
            name="FeatureAblation",
            build=lambda forward, layer: FeatureAblation(forward),
            kwargs=ablation_kwargs,
            settings=with_baselines(
                "FeatureAblation on token ids (= Occlusion, window 1)"
            ),
        ),
        "Lime": lambda: MethodSpec(
            name="Lime",
            build=lambda forward, layer: Lime(
                forward, interpretable_model=linear_surrogate(lime_alpha)
            ),
            kwargs=sampling_kwargs,
            stochastic=True,
            per_example=True,
            settings={
                **sampling_settings,
                "interpretable_model": f"weighted ridge, alpha={lime_alpha}",
                "similarity": "Captum default (exp. kernel on cosine distance)",
            },
        ),
        "KernelShap": lambda: MethodSpec(
            name="KernelShap",
            build=kernel_shap,
            kwargs=sampling_kwargs,
            stochastic=True,
            per_example=True,
            settings={
                **sampling_settings,
                "interpretable_model": "weighted least squares (exact)",
            },
        ),
        "Random": lambda: MethodSpec(
            name="Random",
            build=lambda forward, layer: _RandomScores(),
            kwargs=lambda batch, seed: {"seed": seed},
            signed=False,
            per_example=True,
            settings={"scores": "uniform [0, 1), numpy generator seeded per sentence"},
        ),
    }


def default_methods(
    names: Sequence[str] | None = None,
    *,
    sigma_settings: Mapping[str, SigmaOptions] | None = None,
    ig_steps: int = 50,
    n_samples: int = 500,
    lime_alpha: float = 1.0,
    max_rows: int = 256,
    sigma_data: Sequence[str] | None = None,
) -> dict[str, MethodSpec]:
    r"""The registry's methods, with the settings of ``docs/evaluation.md``.

    Args:
        names (sequence of str, optional): Methods to return: names of
                :data:`DEFAULT_METHOD_NAMES`, keys of ``sigma_settings``,
                :data:`SIGMA_PROBABILITY_ROW` or :data:`SIGMA_LOGIT_ROW`.
                Default: all Sigma settings, then every default method.
        sigma_settings (mapping, optional): Row name -> :class:`SigmaOptions`
                of each Sigma row run by :class:`TextExplainer` on its default
                output (the probability, self-normalised).
                Default: ``{"Sigma": DEFAULT_TEXT_OPTIONS}``, the default
                explainer (``TextExplainer.default()``).
        ig_steps (int, optional): Integrated-gradients steps. Default: 50.
        n_samples (int, optional): Lime / KernelShap samples. Default: 500.
        lime_alpha (float, optional): Ridge penalty of Lime's surrogate.
                Default: 1.0 (the ``lime`` package's Ridge).
        max_rows (int, optional): Most rows one forward pass sees (memory knob).
                Default: 256.
        sigma_data (sequence of str, optional): Texts for the Sigma rows' ``r``.
                Default: :func:`~captum_sigma.text.default_data_sample`, as
                :meth:`TextExplainer.default`.

    Returns:
        methods (dict[str, MethodSpec]): By name, in table order.
    """
    if sigma_settings is None:
        sigma_settings = {"Sigma": DEFAULT_TEXT_OPTIONS}
    for name, value in (("ig_steps", ig_steps), ("n_samples", n_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive integer, got {max_rows!r}")
    registry = _registry(ig_steps, n_samples, lime_alpha, max_rows)
    factories: dict[str, Callable[[], MethodSpec]] = {}
    for sigma_name, options in sigma_settings.items():
        factories[sigma_name] = lambda n=sigma_name, o=options: _explainer_spec(
            n, o, sigma_data
        )
    defaults = [*factories, *registry]
    factories.update(registry)
    factories[SIGMA_PROBABILITY_ROW] = lambda: _probability_spec(
        SIGMA_PROBABILITY_ROW, SigmaOptions(), max_rows
    )
    factories[SIGMA_LOGIT_ROW] = lambda: _explainer_spec(
        SIGMA_LOGIT_ROW, PREVIOUS_DEFAULT_OPTIONS, sigma_data, output="logit"
    )
    if names is None:
        names = defaults
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise ValueError(f"unknown method names {unknown}; known: {sorted(factories)}")
    return {name: factories[name]() for name in names}


def as_method_spec(name: str, method: Any) -> MethodSpec:
    r"""Wraps a user's method as a :class:`MethodSpec`.

    Args:
        name (str): Row name.
        method (object): A :class:`MethodSpec` (returned, renamed to ``name``),
                a Captum attribution object already built on a forward function
                taking ``(input_ids, attention_mask)`` (e.g.
                :func:`classifier_forward`), called as
                ``method.attribute(input_ids, target=..., additional_forward_args=
                (attention_mask,))``, or a callable
                ``f(input_ids, attention_mask, target) -> Tensor`` of shape
                (B, T) or (B, T, ...). Both are assumed signed; their passes are
                not counted (NaN in the tables) unless built through a spec.

    Returns:
        MethodSpec: The spec.
    """
    if isinstance(method, MethodSpec):
        if method.name == name:
            return method
        return replace(method, name=name)
    if not (hasattr(method, "attribute") or callable(method)):
        raise TypeError(
            f"method {name!r} must be a MethodSpec, a Captum attribution or a "
            f"callable, got {type(method).__name__}"
        )
    return MethodSpec(
        name=name,
        build=lambda forward, layer: method,
        counted=False,
        settings={"object": type(method).__name__, "user": True},
    )
