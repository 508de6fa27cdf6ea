"""Uncertainty, flatness, absolute colours and one unit in every view (issue #17)."""

import json

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from captum_sigma import visualization as vis
from captum_sigma.text import TextExplanation, WordsLayersExplanation
from captum_sigma.text.explanation import FORMAT_VERSION, RankedToken

T_95_3 = 3.1824463052837078  # scipy.stats.t.ppf(0.975, 3): 4 chains
T_95_1 = 12.706204736174694  # 2 chains
T_90_3 = 2.3533634348018233  # scipy.stats.t.ppf(0.95, 3)
NOTICE = "no token stands out at this budget"


def sentence(scores, standard_error=None, chains=4, **kwargs):
    """[CLS] a b c d [SEP] with the given six scores."""
    tokens = ["[CLS]", "a", "b", "c", "d", "[SEP]"]
    return TextExplanation(
        text="a b c d",
        tokens=tokens,
        scores=list(scores),
        sigma=[0.1] * 6,
        explained="probability of class 1 (positive)",
        predicted_name="positive",
        probability=0.99,
        word_ids=[None, 0, 1, 2, 3, None],
        standard_error=standard_error,
        chains=chains if standard_error is not None else 1,
        **kwargs,
    )


def uneven(se=0.1):
    # non-special scores 1.0, 1.2, 2.0, 1.1: median 1.15, spread 0.5
    return sentence([9.0, 1.0, 1.2, 2.0, 1.1, 9.0], [se] * 6)


def flat(se=0.01):
    # the example: 1.173 to 1.218 nats per token
    return sentence([1.19, 1.218, 1.173, 1.2, 1.18, 1.19], [se] * 6)


# -- intervals, distinguishability, flatness -----------------------------------------


def test_interval_is_student_t_times_standard_error():
    explanation = uneven(0.1)
    low, high = explanation.interval()[3]
    assert (low, high) == pytest.approx((2.0 - 0.1 * T_95_3, 2.0 + 0.1 * T_95_3))
    low, high = explanation.interval(level=0.9)[3]
    assert high - 2.0 == pytest.approx(0.1 * T_90_3)
    two = sentence([1.0] * 6, [0.5] * 6, chains=2)
    assert two.interval()[0][1] == pytest.approx(1.0 + 0.5 * T_95_1)
    assert sentence([1.0] * 6).interval() is None  # one chain: no standard error
    assert vis.half_widths([0.1], chains=1) is None
    with pytest.raises(ValueError, match="level"):
        vis.t_quantile(1.5, 4)
    with pytest.raises(ValueError, match="2 chains"):
        vis.t_quantile(0.95, 1)


def test_distinguishable_against_the_median_of_non_special_tokens():
    # median 1.15, half-width 0.318: only c (2.0) and the special tokens (9.0)
    assert uneven(0.1).distinguishable() == [True, False, False, True, False, True]
    # half-width 0.955: c's interval [1.045, 2.955] holds 1.15
    assert uneven(0.3).distinguishable() == [True, False, False, False, False, True]
    assert sentence([9.0, 1.0, 1.2, 2.0, 1.1, 9.0]).distinguishable() is None
    # no special flags: every token counts, (1.2 + 2.0) / 2
    assert vis.median_information([9.0, 1.0, 1.2, 2.0, 1.1, 9.0]) == 1.6
    assert vis.median_information([9.0, 1.0, 1.2, 2.0, 1.1, 9.0], _SPECIAL) == 1.15


def test_is_flat_by_spread_or_within_its_own_uncertainty():
    assert not uneven(0.1).is_flat()  # spread 0.5 and c stands out
    assert uneven(0.3).is_flat()  # spread 0.5 but nothing distinguishable
    no_error = sentence([9.0, 1.0, 1.2, 2.0, 1.1, 9.0])
    assert not no_error.is_flat()
    assert flat(0.01).is_flat() and flat(0.0001).is_flat()  # spread 3.7 %
    assert sentence([1.19, 1.218, 1.173, 1.2, 1.18, 1.19]).is_flat()
    # either side of 20 %, special tokens left out
    assert vis.information_spread([5.0, 1.0, 0.75, 1.0, 1.0, 5.0], _SPECIAL) == (
        pytest.approx(0.25)
    )
    assert not vis.is_flat([5.0, 1.0, 0.75, 1.0, 1.0, 5.0], special=_SPECIAL)
    assert vis.is_flat([5.0, 1.0, 0.85, 1.0, 1.0, 5.0], special=_SPECIAL)
    assert not vis.is_flat([5.0, 1.0, 0.85, 1.0, 1.0, 5.0])  # 5.0 counts then
    assert vis.FLAT_SPREAD == 0.2
    assert vis.is_flat([0.0, 0.0]) and vis.is_flat([3.0, 3.0], special=[True, True])


_SPECIAL = [True, False, False, False, False, True]


def test_ranking_marks_ties_by_overlapping_intervals():
    ranking = uneven(0.1).ranking()
    assert all(isinstance(entry, RankedToken) for entry in ranking)
    assert [entry.token for entry in ranking] == ["c", "b", "d", "a"]
    assert [entry.tied for entry in ranking] == [False, True, True, False]
    assert ranking[0] == RankedToken("c", 2.0, 0.1, False, 3)
    plain = sentence([9.0, 1.0, 1.2, 1.2, 1.1, 9.0]).ranking()
    assert [entry.tied for entry in plain] == [True, False, False, False]
    assert plain[0].standard_error is None
    everything = uneven(0.1).ranking(skip_special=False)
    assert [entry.token for entry in everything][:2] == ["[CLS]", "[SEP]"]
    assert everything[0].tied  # 9.0 and 9.0


# -- sub-words -----------------------------------------------------------------------


def two_piece_flat(se=0.05):
    return TextExplanation(
        text="a boring film",
        tokens=["[CLS]", "a", "bor", "##ing", "film", "[SEP]"],
        scores=[1.2, 1.21, 1.19, 1.2, 1.18, 1.2],
        sigma=[0.1, 0.1, 0.2, 0.05, 0.1, 0.1],
        explained="probability of class 1 (positive)",
        word_ids=[None, 0, 1, 1, 2, None],
        standard_error=[se] * 6,
        chains=4,
    )


def test_merge_subwords_adds_variances_and_counts_pieces():
    explanation = sentence([1.0] * 6, [0.1, 0.3, 0.4, 0.2, 0.2, 0.1])
    explanation.word_ids = [None, 0, 0, 1, 1, None]
    merged = explanation.merge_subwords()
    assert merged.tokens == ["[CLS]", "ab", "cd", "[SEP]"]
    assert merged.scores == pytest.approx([1.0, 2.0, 2.0, 1.0])
    assert merged.standard_error == pytest.approx([0.1, 0.5, 0.08**0.5, 0.1])
    assert merged.pieces == [1, 2, 2, 1]
    assert merged.merge_subwords() == merged
    assert sentence([1.0] * 6).merge_subwords().standard_error is None


def test_a_two_piece_word_in_a_flat_sentence_is_not_drawn_as_standing_out():
    merged = two_piece_flat().merge_subwords()
    assert merged.tokens == ["[CLS]", "a", "boring", "film", "[SEP]"]
    assert merged.scores[2] == pytest.approx(2.39)  # the sum, shown as it is
    assert merged.distinguishable()[2] is False
    assert merged.is_flat() and NOTICE in merged.summary()
    page = merged.to_html()
    assert 'class="indistinct"' in _mark(page, "boring")
    assert vis.MERGED_NOTE[1:] in page
    figure = merged.plot()
    assert _hatched(figure.axes[0]) == 5  # every cell, the word included
    assert NOTICE in figure._suptitle.get_text()
    legend = " ".join(t.get_text() for t in figure.legends[0].get_texts())
    assert "sums over their word pieces" in legend and "median" in legend
    assert "Words: scores are sums" in merged.table()
    # without a standard error the spread is per piece: still flat
    single = two_piece_flat()
    single.standard_error, single.chains = None, 1
    assert single.merge_subwords().is_flat()


# -- absolute colours, legends, one unit ---------------------------------------------


def test_shared_scale_shows_a_tenfold_difference():
    small = sentence([1.0, 1.0, 3.0, 2.0, 1.0, 1.0])
    big = sentence([10.0, 10.0, 30.0, 20.0, 10.0, 10.0])
    vmax = vis.shared_vmax([small, big])
    assert vmax == 30.0
    low = small.to_record(vmax=vmax).word_attributions
    high = big.to_record(vmax=vmax).word_attributions
    np.testing.assert_allclose(low.numpy(), 0.1 * high.numpy(), rtol=1e-6)
    page = vis.explanations_to_html([small, big])
    assert page.count('<p class="legend">') == 1
    assert _colour(page, 0, "b") != _colour(page, 1, "b")
    assert vis.shared_vmax([small], vmax=7.0) == 7.0
    assert vis.shared_vmax([[0.0, 0.0]]) == 1.0
    assert vis.shared_vmax([WordsLayersExplanation("x", ["a"], [1], [[4.0]], [[0.1]])])
    with pytest.raises(ValueError, match="vmax"):
        vis.shared_vmax([small], vmax=0.0)


def test_a_flat_explanation_is_not_drawn_with_full_contrast():
    explanation = flat()
    values = explanation.to_record().word_attributions
    assert float(values.max() - values.min()) < 0.05  # min-max would give 1.0
    assert explanation.normalized_scores() == pytest.approx(values.tolist())
    figure = explanation.plot()
    image = figure.axes[0].images[0]
    assert image.norm.vmin == 0.0 and image.norm.vmax == pytest.approx(1.218)
    shown = image.norm(np.asarray(explanation.scores))
    assert float(shown.max() - shown.min()) < 0.05


def test_legends_are_in_nats_per_token():
    explanation = uneven()
    page = explanation.to_html()
    legend = page.split('<p class="legend">')[1].split("</p>")[0]
    assert "nats per token" in legend and "dashed border" in legend
    assert ">9<" in legend and ">0<" in legend  # swatches labelled in nats
    assert "2.000 ± 0.318 nats per token" in page  # tooltip: score ± half-width
    figure = explanation.plot()
    colorbar = figure.axes[-1]
    assert "nats per token" in colorbar.get_xlabel()
    assert colorbar.get_xlim() == pytest.approx((0.0, 9.0))  # 0 to vmax, in nats
    ticks = [float(t) for t in colorbar.get_xticks() if 0.0 <= t <= 9.0]
    assert ticks == [0.0, 2.0, 4.0, 6.0, 8.0]
    layers = WordsLayersExplanation(
        "a b", ["a", "b"], [1, 2], [[1.0, 2.0], [3.0, 4.0]], [[0.1] * 2] * 2
    )
    heat = layers.plot(vmax=8.0)
    assert "nats per token" in heat.axes[-1].get_ylabel()
    assert heat.axes[0].images[0].norm.vmax == 8.0
    assert heat.axes[0].images[0].norm.vmin == 0.0


def test_flat_notice_in_every_view_and_only_when_flat():
    explanation = flat()
    assert NOTICE in explanation.summary()
    assert NOTICE in explanation.table()
    assert NOTICE in explanation.to_html()
    assert NOTICE in explanation.to_record().attr_class
    assert explanation.to_record().attr_class.startswith("probability of class 1")
    assert NOTICE in explanation.plot()._suptitle.get_text()
    assert explanation.to_dict()["flat"] is True
    other = uneven()
    assert NOTICE not in other.summary() + other.table() + other.to_html()
    assert NOTICE not in other.to_record().attr_class
    assert NOTICE not in other.plot()._suptitle.get_text()
    assert vis.NO_TOKEN_STANDS_OUT == NOTICE


def test_html_marks_tokens_that_are_not_distinguishable():
    page = uneven(0.1).to_html()
    assert 'class="indistinct"' in _mark(page, "a")
    assert 'class="indistinct"' not in _mark(page, "c")
    assert "not distinguishable from the sentence&#x27;s median" in _mark(page, "a")
    assert "one chain" not in page.lower()
    single = sentence([9.0, 1.0, 1.2, 2.0, 1.1, 9.0]).to_html()
    assert 'class="indistinct"' not in single and "dashed border" not in single
    assert "One chain: no standard error" in single


def test_figure_hatches_tokens_that_are_not_distinguishable():
    figure = uneven(0.1).plot()
    assert _hatched(figure.axes[0]) == 3  # a, b, d
    assert figure.legends and "median" in figure.legends[0].get_texts()[0].get_text()
    assert _hatched(sentence([9.0, 1.0, 1.2, 2.0, 1.1, 9.0]).plot().axes[0]) == 0


def test_table_has_half_widths_and_marks():
    lines = uneven(0.1).table().splitlines()
    assert "nats per token" in lines[0] and "± 95 %" in lines[0]
    assert "distinct" in lines[0]
    row_c = lines[4].split()
    assert row_c[1:5] == ["c", "2.000", "0.318", "yes"]
    assert lines[2].split()[4] == "no"
    assert "half-width of the 95 % interval" in lines[-1]
    plain = sentence([9.0, 1.0, 1.2, 2.0, 1.1, 9.0]).table().splitlines()
    assert len(plain) == 7 and "±" not in plain[0] and "distinct" not in plain[0]


# -- JSON ----------------------------------------------------------------------------


def test_json_version_2_round_trip_and_units():
    explanation = uneven(0.1)
    explanation.passes = 2000
    explanation.preset = "default"
    data = json.loads(explanation.to_json())
    assert data["format_version"] == FORMAT_VERSION == 2
    assert data["units"]["scores"] == "nats per token"
    assert data["units"]["standard_error"] == "nats per token"
    assert data["standard_error"] == [0.1] * 6 and data["chains"] == 4
    restored = TextExplanation.from_json(explanation.to_json())
    assert restored == explanation
    merged = two_piece_flat().merge_subwords()
    assert TextExplanation.from_dict(merged.to_dict()) == merged


def test_reads_version_1_and_rejects_newer_versions():
    version_1 = {
        "text": "good",
        "tokens": ["[CLS]", "good", "[SEP]"],
        "scores": [1.0, 5.0, 1.0],
        "sigma": [0.3, 0.01, 0.3],
        "explained": "probability of class 1 (positive)",
        "target": 1,
        "target_name": "positive",
        "layer": None,
        "predicted_label": 1,
        "predicted_name": "positive",
        "probability": 0.9,
        "scale": 0.5,
        "word_ids": [None, 0, None],
        "offsets": [[0, 0], [0, 4], [0, 0]],
        "merged": False,
        "truncated": False,
        "format_version": 1,
    }
    explanation = TextExplanation.from_dict(version_1)
    assert explanation.standard_error is None and explanation.chains == 1
    assert explanation.passes is None and explanation.preset is None
    assert explanation.offsets[1] == (0, 4)
    with pytest.raises(ValueError, match="newer"):
        TextExplanation.from_dict({**version_1, "format_version": 3})


def test_words_layers_standard_error_merge_plot_and_json():
    view = WordsLayersExplanation(
        text="a witty film",
        tokens=["[CLS]", "a", "wit", "##ty", "film", "[SEP]"],
        layers=[1, 2],
        scores=[[1.0, 1.1, 1.2, 1.0, 1.05, 1.0], [2.0, 1.0, 5.0, 4.0, 2.0, 2.0]],
        sigma=[[0.1] * 6, [0.1] * 6],
        word_ids=[None, 0, 1, 1, 2, None],
        standard_error=[[0.1] * 6, [0.3, 0.3, 0.3, 0.4, 0.3, 0.3]],
        chains=4,
    )
    merged = view.merge_subwords()
    assert merged.standard_error[1][2] == pytest.approx(0.5)
    assert merged.pieces == [1, 1, 2, 1, 1]
    marks = merged.distinguishable()
    assert marks[0] == [False] * 5  # layer 1: 1.1 nats per piece, median 1.1
    assert marks[1][2] is True  # 9 nats over 2 pieces against 2 × 1.0
    figure = merged.plot()
    assert _hatched(figure.axes[0]) == sum(not m for row in marks for m in row)
    data = json.loads(merged.to_json())
    assert data["format_version"] == 2 and data["units"]["scores"] == "nats per token"
    assert WordsLayersExplanation.from_dict(data) == merged
    old = {k: v for k, v in view.to_dict().items() if k in _V1_LAYER_KEYS}
    assert WordsLayersExplanation.from_dict({**old, "format_version": 1}).chains == 1
    with pytest.raises(ValueError, match="rows"):
        WordsLayersExplanation("x", ["a"], [1], [[1.0]], [[0.1]], standard_error=[])


_V1_LAYER_KEYS = {
    "text",
    "tokens",
    "layers",
    "scores",
    "sigma",
    "scale",
    "predicted_name",
    "probability",
    "word_ids",
    "offsets",
    "merged",
    "truncated",
}


# -- helpers -------------------------------------------------------------------------


def _mark(page: str, token: str) -> str:
    """The ``<mark ...>token</mark>`` element of the page's first row."""
    end = page.index(f">{token}</mark>")
    return page[page.rindex("<mark", 0, end) : end]


def _colour(page: str, row: int, token: str) -> str:
    body = page.split("<tr>")[2 + row]
    end = body.index(f">{token}</mark>")
    mark = body[body.rindex("<mark", 0, end) : end]
    return mark.split("background-color: ")[1].split('"')[0]


def _hatched(ax) -> int:
    return sum(
        1 for patch in ax.patches if isinstance(patch, Rectangle) and patch.get_hatch()
    )
