"""Words × layers: one objective per layer, batched, as a matrix and a heatmap."""

import pytest
import torch
from matplotlib.figure import Figure
from text_models import make_tiny_encoder, make_tokenizer

from captum_sigma.text import TextExplainer, WordsLayersExplanation

DATA = ["good film", "bad plot .", "the movie is great", "awful , not good !"]
TEXTS = ["unbelievably good film !", "bad"]
STEPS = 20


@pytest.fixture(scope="module")
def explainer():
    return TextExplainer(
        make_tiny_encoder(), make_tokenizer(), data=DATA, n_steps=STEPS
    )


def test_matrix_shape_is_layers_by_tokens(explainer):
    views = explainer.explain_layers(TEXTS)
    assert [view.text for view in views] == TEXTS
    long, short = views
    assert isinstance(long, WordsLayersExplanation)
    assert long.layers == [1, 2, 3]
    assert long.matrix.shape == (3, len(long.tokens)) == (3, 8)
    assert short.matrix.shape == (3, 3) and short.tokens == ["[CLS]", "bad", "[SEP]"]
    assert long.sigma_matrix.shape == long.matrix.shape
    assert (long.sigma_matrix > 0).all() and (long.sigma_matrix < long.scale).all()
    assert isinstance(explainer.explain_layers(TEXTS[1]), WordsLayersExplanation)


def test_each_row_equals_that_layers_own_explanation(explainer):
    view = explainer.explain_layers(TEXTS[0], layers=[3, 1])
    assert view.layers == [3, 1]
    for row, layer in enumerate(view.layers):
        single = explainer.explain(TEXTS[0], layer=layer)
        torch.testing.assert_close(
            view.sigma_matrix[row], torch.tensor(single.sigma), rtol=1e-3, atol=1e-6
        )


def test_words_merge_every_layer(explainer):
    view = explainer.explain_layers(TEXTS[0], words=True)
    assert view.tokens == ["[CLS]", "unbelievably", "good", "film", "!", "[SEP]"]
    assert view.matrix.shape == (3, 6)
    tokens = explainer.explain_layers(TEXTS[0])
    assert tokens.tokens[1:4] == ["un", "##believ", "##ably"]
    torch.testing.assert_close(view.matrix[:, 1], tokens.matrix[:, 1:4].sum(1))


def test_plot_and_json_round_trip(explainer, tmp_path):
    view = explainer.explain_layers(TEXTS[1])
    figure = view.plot()
    assert isinstance(figure, Figure)
    assert figure.axes[-1].get_ylabel() == "information (nats per token)"
    assert figure.axes[0].images[0].norm.vmin == 0.0  # absolute, 0 nats is white
    figure.savefig(tmp_path / "layers.png")
    assert WordsLayersExplanation.from_json(view.to_json()) == view
    with pytest.raises(ValueError, match="rows"):
        WordsLayersExplanation("x", ["a"], [1, 2], [[1.0]], [[0.1]])


@pytest.mark.parametrize("layers", [[], [0], [4], 2])
def test_bad_layers(explainer, layers):
    with pytest.raises(ValueError, match="layer"):
        explainer.explain_layers(TEXTS[1], layers=layers)


def test_classifier_reports_its_prediction(tiny_bert):
    explainer = TextExplainer(tiny_bert, make_tokenizer(), data=DATA, n_steps=5)
    view = explainer.explain_layers(TEXTS[1])
    assert view.predicted_name in ("LABEL_0", "LABEL_1")
    assert view.matrix.shape == (2, 3)
