"""captum_sigma.visualization: normalisation, records, escaped HTML, figures."""

import pytest
import torch
from matplotlib.figure import Figure

from captum_sigma import visualization as vis


def test_normalize_scores_max_and_minmax():
    assert vis.normalize_scores([1.0, 2.0, 4.0]) == pytest.approx([0.25, 0.5, 1.0])
    assert vis.normalize_scores([-2.0, 1.0]) == pytest.approx([-1.0, 0.5])
    assert vis.normalize_scores([1.0, 2.0, 5.0], "minmax") == pytest.approx(
        [0.0, 0.25, 1.0]
    )
    assert vis.normalize_scores([0.0, 0.0]) == [0.0, 0.0]
    assert vis.normalize_scores([3.0, 3.0], "minmax") == [1.0, 1.0]
    assert vis.normalize_scores(torch.tensor([float("nan"), 2.0])) == [0.0, 1.0]
    assert vis.normalize_scores([]) == []
    with pytest.raises(ValueError, match="method"):
        vis.normalize_scores([1.0], "softmax")


def test_make_record_checks_lengths_and_defaults():
    record = vis.make_record(["a", "b"], [1.0, 3.0])
    assert record.word_attributions.tolist() == pytest.approx([1 / 3, 1.0])
    assert record.attr_score == pytest.approx(4.0)
    assert record.pred_class == "" and record.true_class == ""
    raw = vis.make_record(["a", "b"], [1.0, 3.0], normalize=False)
    assert raw.word_attributions.tolist() == [1.0, 3.0]
    shared = vis.make_record(["a", "b"], [1.0, 3.0], vmax=2.0)  # absolute, clipped
    assert shared.word_attributions.tolist() == pytest.approx([0.5, 1.0])
    assert vis.absolute_scores([-1.0, float("nan"), 4.0], 8.0) == [0.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="vmax"):
        vis.make_record(["a"], [1.0], vmax=-1.0)
    with pytest.raises(ValueError, match="scores"):
        vis.make_record(["a"], [1.0, 2.0])


def test_records_to_html_escapes_tokens_captions_labels_and_notes():
    record = vis.make_record(
        ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"],
        [1.0, -1.0],
        pred_prob=0.75,
        pred_class="<b>p</b>",
        true_class="<i>t</i>",
        attr_class="<u>a</u>",
    )
    page = vis.records_to_html(
        [record],
        title="</title><script>x</script>",
        captions=["<script>caption</script>"],
        token_notes=[['"><script>', "<img>"]],
    )
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered
    for raw in ("<b>p", "<i>t", "<u>a"):
        assert raw not in page
    assert 'title="&quot;&gt;&lt;script&gt;"' in page
    assert "&lt;b&gt;p&lt;/b&gt; (0.75)" in page
    assert "hsl(0, 75%" in page  # negative score coloured red, as captum


def test_records_to_html_legend_states_its_unit():
    record = vis.make_record(["a", "b"], [1.0, 4.0], vmax=8.0)
    page = vis.records_to_html([record], vmax=8.0, distinguishable=[[False, True]])
    legend = page.split('<p class="legend">')[1].split("</p>")[0]
    assert "nats per token" in legend and ">8<" in legend and ">4<" in legend
    assert "dashed border" in legend
    assert page.count('class="indistinct"') == 1
    unitless = vis.records_to_html([vis.make_record(["a"], [1.0])])
    assert "no unit" in unitless and "dashed border" not in unitless
    with pytest.raises(ValueError, match="distinguishable"):
        vis.records_to_html([record], distinguishable=[None, None])


def test_records_to_html_checks_parallel_lists():
    record = vis.make_record(["a"], [1.0])
    with pytest.raises(ValueError, match="captions"):
        vis.records_to_html([record], captions=["x", "y"])
    with pytest.raises(ValueError, match="token_notes"):
        vis.records_to_html([record], token_notes=[["x", "y"]])


def test_plot_words_layers_shape_and_errors(tmp_path):
    figure = vis.plot_words_layers(["a", "b", "c"], [1, 2], [[1, 2, 3], [3, 2, 1]])
    assert isinstance(figure, Figure)
    assert figure.axes[-1].get_ylabel() == "information (nats per token)"
    assert figure.axes[0].images[0].norm.vmin == 0.0
    figure.savefig(tmp_path / "layers.png")
    with pytest.raises(ValueError, match="distinguishable"):
        vis.plot_words_layers(["a"], [1], [[1.0]], distinguishable=[[True, True]])
    with pytest.raises(ValueError, match="matrix"):
        vis.plot_words_layers(["a", "b"], [1, 2], [[1, 2, 3], [3, 2, 1]])


def test_plot_token_scores_checks_lengths():
    figure = vis.plot_token_scores(["a", "b"], [1.0, 2.0], vmax=4.0)
    assert figure.axes[0].images[0].norm.vmax == 4.0  # absolute, not min-max
    assert "nats per token" in figure.axes[-1].get_xlabel()
    assert not figure.legends  # no marks, no notes: no legend below
    with pytest.raises(ValueError, match="scores"):
        vis.plot_token_scores(["a"], [1.0, 2.0])
    with pytest.raises(ValueError, match="distinguishable"):
        vis.plot_token_scores(["a"], [1.0], distinguishable=[True, False])
    with pytest.raises(ValueError, match="per_row"):
        vis.plot_token_scores(["a"], [1.0], per_row=0)


def test_format_token_table():
    table = vis.format_token_table(["a", "tab\t"], [1.0, 2.0], [0.3, 0.1])
    lines = table.splitlines()
    assert len(lines) == 3 and "sigma" in lines[0]
    assert "tab\\t" in lines[2] and lines[2].endswith("#" * 20)
    with pytest.raises(ValueError, match="one value per token"):
        vis.format_token_table(["a"], [1.0], [0.1, 0.2])
    halves = vis.format_token_table(
        ["a", "b"],
        [1.0, 2.0],
        [0.3, 0.1],
        standard_error=[0.1, 0.2],
        chains=2,
        distinguishable=[False, True],
        vmax=4.0,
        notes=["note"],
    ).splitlines()
    assert "nats per token" in halves[0] and "± 95 %" in halves[0]
    assert halves[1].split()[2:5] == ["1.000", "1.271", "no"]  # 12.706 x 0.1
    assert halves[2].endswith("#" * 10)  # 2 of 4 nats
    assert halves[-1] == "note" and "Student t" in halves[-2]


def test_token_marks_is_the_one_token_renderer():
    marks = vis.token_marks(
        ["[CLS]", "<img src=x>", "b", "[SEP]", "[PAD]"],
        [9.0, -2.0, 1.0, 9.0, 0.0, 0.0],
        normalize="max",
        ranked=[False, True, True, False, False],
        token_notes=["x", '"><script>', "1", "x", "x"],
    )
    assert "<img" not in marks and "&lt;img src=x&gt;" in marks
    assert marks.count('<mark class="special">') == 3  # no colour, no note
    # normalised over the ranked tokens only: -2 / 2 and 1 / 2
    assert 'hsl(0, 75%, 60%)" title="&quot;&gt;&lt;script&gt;"' in marks
    assert 'hsl(120, 75%, 75%)" title="1"' in marks
    plain = vis.token_marks(["a", "b"], [0.5, 7.0])  # already in [-1, 1]: clipped
    assert "hsl(120, 75%, 75%)" in plain and "hsl(120, 75%, 50%)" in plain
    with pytest.raises(ValueError, match="scores"):
        vis.token_marks(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="token_notes"):
        vis.token_marks(["a"], [1.0], token_notes=["x", "y"])
    with pytest.raises(ValueError, match="ranked"):
        vis.token_marks(["a", "b"], [1.0, 2.0], ranked=[True])
    dashed = vis.token_marks(["a", "<b>"], [0.5, 1.0], distinguishable=[True, False])
    assert dashed.count('class="indistinct"') == 1 and "&lt;b&gt;" in dashed
    with pytest.raises(ValueError, match="distinguishable"):
        vis.token_marks(["a"], [1.0], distinguishable=[True, True])
