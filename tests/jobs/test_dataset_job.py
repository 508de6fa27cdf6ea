"""DatasetJob with a fast deterministic explainer: bad rows, resume, SIGTERM, OOM."""

import json
import os
import signal

import pytest
import torch

from captum_sigma.jobs import DatasetJob


class FakeExplainer:
    """Scores = word lengths; counts calls so resumes can be checked."""

    max_length = 12

    def __init__(self, fail_after=None, on_batch=None, oom_above=None):
        self.calls = 0
        self.explained = 0
        self.fail_after = fail_after
        self.on_batch = on_batch
        self.oom_above = oom_above

    def count_tokens(self, text):
        return len(text.split()) + 2

    def explain(self, texts):
        if self.oom_above is not None and len(texts) > self.oom_above:
            raise torch.cuda.OutOfMemoryError("fake OOM")
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise SystemExit("killed")  # not an Exception: aborts like a crash
        if self.on_batch is not None:
            self.on_batch(self.calls)
        if any("boom" in t for t in texts):
            raise RuntimeError("cannot explain boom")
        self.explained += len(texts)
        return [
            {"tokens": t.split(), "scores": [len(w) for w in t.split()]} for t in texts
        ]

    def describe(self):
        return {"explainer": "fake"}


def write_texts(path, n=30):
    texts = [f"sentence number {i} " + "word " * (i % 5) for i in range(n)]
    path.write_text("\n".join(texts) + "\n")
    return texts


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(tmp_path, explainer, out="out", **kwargs):
    job = DatasetJob(
        tmp_path / "texts.txt",
        tmp_path / out,
        explainer,
        batch_size=4,
        bucket_batches=2,
        show_progress=False,
        **kwargs,
    )
    return job.run()


def test_results_in_input_order_and_complete(tmp_path):
    texts = write_texts(tmp_path / "texts.txt")
    summary = run(tmp_path, FakeExplainer())
    rows = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert [r["index"] for r in rows] == list(range(len(texts)))
    assert [r["text"] for r in rows] == [t.strip() for t in texts]
    assert summary.items == len(texts) and summary.errors == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["merged"] == {"results": len(texts), "errors": 0}


def test_bad_rows_go_to_the_errors_file(tmp_path):
    lines = [
        b"good one",
        b"",
        b"bad \xff\xfe bytes",
        b"a b c d e f g h i j k l m",
        b"boom here",
        b"good two",
    ]
    (tmp_path / "texts.txt").write_bytes(b"\n".join(lines) + b"\n")
    summary = run(tmp_path, FakeExplainer())
    errors = {
        r["index"]: r["error"] for r in read_jsonl(tmp_path / "out" / "errors.jsonl")
    }
    assert set(errors) == {1, 2, 3, 4}
    assert "empty" in errors[1]
    assert "undecodable" in errors[2]
    assert "too long" in errors[3]
    assert "cannot explain boom" in errors[4]
    results = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert [r["text"] for r in results] == ["good one", "good two"]
    assert summary.errors == 4 and summary.items == 2


def test_jsonl_and_csv_inputs(tmp_path):
    (tmp_path / "t.jsonl").write_text(
        '{"id": "a", "text": "first text"}\nnot json\n{"id": "c", "body": "x"}\n'
    )
    job = DatasetJob(
        tmp_path / "t.jsonl", tmp_path / "j", FakeExplainer(), show_progress=False
    )
    job.run()
    assert [r["id"] for r in read_jsonl(tmp_path / "j" / "results.jsonl")] == ["a"]
    errors = read_jsonl(tmp_path / "j" / "errors.jsonl")
    assert [e["index"] for e in errors] == [1, 2]
    (tmp_path / "t.csv").write_text('id,review\nx1,"good, with comma"\nx2,\n')
    job = DatasetJob(
        tmp_path / "t.csv",
        tmp_path / "c",
        FakeExplainer(),
        text_field="review",
        show_progress=False,
    )
    job.run()
    assert read_jsonl(tmp_path / "c" / "results.jsonl")[0]["text"] == "good, with comma"
    with pytest.raises(ValueError, match="--text-field"):
        DatasetJob(
            tmp_path / "t.csv", tmp_path / "d", FakeExplainer(), show_progress=False
        ).run()


def test_crash_then_resume_recomputes_nothing_and_loses_nothing(tmp_path):
    texts = write_texts(tmp_path / "texts.txt")
    run(tmp_path, FakeExplainer(), out="reference")
    crashing = FakeExplainer(fail_after=3)
    with pytest.raises(SystemExit):
        run(tmp_path, crashing)
    assert not (tmp_path / "out" / "results.jsonl").exists()
    resumed = FakeExplainer()
    summary = run(tmp_path, resumed)
    assert summary.skipped == crashing.explained == 12
    assert resumed.explained == len(texts) - 12
    assert (tmp_path / "out" / "results.jsonl").read_text() == (
        tmp_path / "reference" / "results.jsonl"
    ).read_text()


def test_sigterm_finishes_the_batch_and_leaves_a_resumable_state(tmp_path):
    write_texts(tmp_path / "texts.txt")
    run(tmp_path, FakeExplainer(), out="reference")

    def terminate(calls):
        if calls == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    first = FakeExplainer(on_batch=terminate)
    summary = run(tmp_path, first)
    assert summary.interrupted and summary.items == first.explained == 8
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    run(tmp_path, FakeExplainer())
    assert (tmp_path / "out" / "results.jsonl").read_text() == (
        tmp_path / "reference" / "results.jsonl"
    ).read_text()


def test_out_of_memory_halves_the_batch(tmp_path):
    texts = write_texts(tmp_path / "texts.txt", n=10)
    explainer = FakeExplainer(oom_above=1)
    summary = run(tmp_path, explainer)
    assert summary.items == len(texts) and explainer.calls == len(texts)


def test_other_settings_in_the_same_output_are_refused(tmp_path):
    write_texts(tmp_path / "texts.txt")
    run(tmp_path, FakeExplainer())
    other = FakeExplainer()
    other.describe = lambda: {"explainer": "other"}
    with pytest.raises(ValueError, match="other settings"):
        run(tmp_path, other)
