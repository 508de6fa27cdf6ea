"""TextExplanation: sub-word merging, records, escaped HTML, figures, JSON."""

import math

import pytest
import torch
from captum.attr import visualization as captum_visualization
from matplotlib.figure import Figure

from captum_sigma.text import TextExplanation

ATTACKS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


def wordpiece_explanation():
    text = "unbelievably good!"
    return TextExplanation(
        text=text,
        tokens=["[CLS]", "un", "##believ", "##ably", "good", "!", "[SEP]"],
        scores=[1.0, 2.0, 3.0, 4.0, 5.0, 0.5, 0.25],
        sigma=[0.4, 0.1, 0.2, 0.4, 0.05, 0.45, 0.48],
        explained="probability of class 1 (positive)",
        target=1,
        target_name="positive",
        predicted_label=1,
        predicted_name="positive",
        probability=0.9,
        word_ids=[None, 0, 0, 0, 1, 2, None],
        offsets=[(0, 0), (0, 2), (2, 8), (8, 12), (13, 17), (17, 18), (0, 0)],
    )


def test_merge_subwords_with_word_ids_sums_scores_and_takes_geometric_mean_sigma():
    merged = wordpiece_explanation().merge_subwords()
    assert merged.tokens == ["[CLS]", "unbelievably", "good", "!", "[SEP]"]
    assert merged.scores == pytest.approx([1.0, 9.0, 5.0, 0.5, 0.25])
    assert merged.sigma[1] == pytest.approx((0.1 * 0.2 * 0.4) ** (1 / 3))
    assert merged.word_ids == [None, 0, 1, 2, None]
    assert merged.offsets[1] == (0, 12)
    assert merged.merged and not wordpiece_explanation().merged
    assert merged.merge_subwords() == merged  # idempotent


def test_merge_subwords_by_spelling_wordpiece_and_byte_level_bpe():
    wordpiece = TextExplanation(
        text="unbelievably good",
        tokens=["[CLS]", "un", "##believ", "##ably", "good", "[SEP]"],
        scores=[1.0, 1.0, 1.0, 1.0, 2.0, 1.0],
        sigma=[0.1] * 6,
    )
    assert wordpiece.merge_subwords().tokens == [
        "[CLS]",
        "unbelievably",
        "good",
        "[SEP]",
    ]
    roberta = TextExplanation(
        text="unbelievably good.",
        tokens=["<s>", "un", "believ", "ably", "Ġgood", ".", "</s>"],
        scores=[1.0, 1.0, 1.0, 1.0, 2.0, 0.5, 1.0],
        sigma=[0.1] * 7,
    )
    merged = roberta.merge_subwords()
    assert merged.tokens == ["<s>", "unbelievably", "good", ".", "</s>"]
    assert merged.scores == pytest.approx([1.0, 3.0, 2.0, 0.5, 1.0])


def test_to_record_is_a_captum_record_with_scores_in_unit_interval():
    explanation = wordpiece_explanation()
    record = explanation.to_record(true_class="positive")
    assert isinstance(record, captum_visualization.VisualizationDataRecord)
    assert record.raw_input_ids == explanation.tokens
    values = record.word_attributions
    assert values.shape == (len(explanation.tokens),)
    # absolute: score / largest score (0 nats would be 0), never min-max
    expected = [score / 5.0 for score in explanation.scores]
    assert values.tolist() == pytest.approx(expected)
    shared = explanation.to_record(vmax=10.0).word_attributions
    assert shared.tolist() == pytest.approx([s / 10.0 for s in explanation.scores])
    assert explanation.to_record(vmax=2.0).word_attributions.max() == 1.0  # clipped
    assert record.attr_score == pytest.approx(sum(explanation.scores))
    assert record.pred_class == "positive" and record.true_class == "positive"
    assert record.pred_prob == pytest.approx(0.9)


def test_to_html_escapes_every_token_and_the_text():
    tokens = ["[CLS]", *ATTACKS, "a&b", '"quoted"', "[SEP]"]
    explanation = TextExplanation(
        text=" ".join(ATTACKS),
        tokens=tokens,
        scores=[float(i) for i in range(len(tokens))],
        sigma=[0.1] * len(tokens),
        explained="<b>class</b>",
        predicted_name="<i>pos</i>",
        probability=0.5,
    )
    page = explanation.to_html(title="<script>title</script>", true_class="<u>x</u>")
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert "<b>class" not in page and "<i>pos" not in page and "<u>x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "a&amp;b" in page and "&quot;quoted&quot;" in page


def test_json_round_trip():
    explanation = wordpiece_explanation()
    restored = TextExplanation.from_json(explanation.to_json())
    assert restored == explanation
    assert restored.offsets[2] == (2, 8)
    merged = explanation.merge_subwords()
    assert TextExplanation.from_dict(merged.to_dict()) == merged


def test_from_dict_rejects_unknown_or_missing_keys():
    data = wordpiece_explanation().to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        TextExplanation.from_dict({**data, "surprise": 1})
    del data["tokens"]
    with pytest.raises(ValueError, match="missing keys"):
        TextExplanation.from_dict(data)


def test_lengths_must_match():
    with pytest.raises(ValueError, match="scores"):
        TextExplanation(text="a", tokens=["a", "b"], scores=[1.0], sigma=[0.1, 0.1])


def test_plot_is_a_figure_and_saves(tmp_path):
    tokens = [f"t{i}" for i in range(45)] + ["$x$", "$"]
    explanation = TextExplanation(
        text="x",
        tokens=tokens,
        scores=[math.sin(i) + 2 for i in range(47)],
        sigma=[0.1] * 47,
    )
    figure = explanation.plot(per_row=20)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 + 1  # three wrapped rows and the colour bar
    path = tmp_path / "tokens.png"
    figure.savefig(path)
    assert path.stat().st_size > 1000


def test_ranking_skips_special_tokens_and_table_lists_every_token():
    explanation = wordpiece_explanation()
    ranking = explanation.ranking()
    assert (ranking[0].token, ranking[0].score) == ("good", 5.0)
    assert all(entry.token not in ("[CLS]", "[SEP]") for entry in ranking)
    assert not any(entry.tied for entry in ranking)  # distinct scores, one chain
    table = explanation.table()
    assert len(table.splitlines()) == len(explanation.tokens) + 1  # not flat
    assert "##believ" in table and "nats per token" in table.splitlines()[0]
    assert torch.isfinite(torch.tensor(explanation.normalized_scores())).all()
