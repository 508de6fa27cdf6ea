"""DatasetJob with a fast deterministic explainer: bad rows, resume, SIGTERM, OOM,
the folder lock, the identity, the batch plan, bad bytes and byte-order marks."""

import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from captum_sigma.jobs import DatasetJob, FolderLockedError, ProcessGroup


class FakeExplainer:
    """Scores = word lengths; counts calls so resumes can be checked."""

    max_length = 12

    def __init__(self, fail_after=None, on_batch=None, oom_above=None, oom_on=None):
        self.calls = 0
        self.explained = 0
        self.fail_after = fail_after
        self.on_batch = on_batch
        self.oom_above = oom_above
        self.oom_on = oom_on
        self.batches = []

    def count_tokens(self, text):
        return len(text.split()) + 2

    def explain(self, texts):
        if self.oom_above is not None and len(texts) > self.oom_above:
            raise torch.cuda.OutOfMemoryError("fake OOM")
        if self.oom_on is not None and any(self.oom_on in t for t in texts):
            raise torch.cuda.OutOfMemoryError("fake OOM")
        self.calls += 1
        self.batches.append(tuple(texts))
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
    assert manifest["merged"] == {
        "results": len(texts),
        "errors": 0,
        "retryable": 0,
        "flat": 0,  # the fake explainer's rows carry no flat flag
    }


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
    assert summary.stop_signal == signal.SIGTERM and not summary.merged
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
    with pytest.raises(ValueError, match="another job.*explainer.explainer"):
        run(tmp_path, other)
    summary = run(tmp_path, other, restart=True)  # --restart: start over
    assert summary.items == 30 and summary.skipped == 0


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sigint_finishes_the_batch_and_records_the_signal(tmp_path):
    """Issue #10 item 6: Ctrl-C stops after the current batch, like SIGTERM."""
    write_texts(tmp_path / "texts.txt")

    def interrupt(calls):
        if calls == 1:
            os.kill(os.getpid(), signal.SIGINT)

    first = FakeExplainer(on_batch=interrupt)
    summary = run(tmp_path, first)
    assert summary.stop_signal == signal.SIGINT and summary.items == 4
    assert len(list((tmp_path / "out" / "shards").glob("*.jsonl"))) == 1
    assert run(tmp_path, FakeExplainer()).skipped == 4


def test_a_second_job_on_the_same_folder_is_refused_and_loses_nothing(tmp_path):
    """Issue #10 item 1: two runs on one output folder."""
    texts = write_texts(tmp_path / "texts.txt")
    refusals = []

    def start_a_second_job(calls):
        if calls == 1:
            with pytest.raises(FolderLockedError, match=f"pid {os.getpid()}") as info:
                run(tmp_path, FakeExplainer())
            refusals.append(str(info.value))

    summary = run(tmp_path, FakeExplainer(on_batch=start_a_second_job))
    assert len(refusals) == 1 and summary.items == len(texts)
    rows = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert [r["index"] for r in rows] == list(range(len(texts)))


HOLDER = """
import fcntl, os, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
handle.write(f"pid {os.getpid()} on test\\n"); handle.flush()
print("locked", flush=True)
time.sleep(120)
"""


def test_the_lock_dies_with_its_process(tmp_path):
    """Issue #10 item 1: a holder killed with -9 leaves no stale lock."""
    write_texts(tmp_path / "texts.txt", n=6)
    (tmp_path / "out").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "out" / ".lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLockedError, match=f"in use by pid {holder.pid}"):
            run(tmp_path, FakeExplainer())
    finally:
        holder.kill()
        holder.wait()
    assert run(tmp_path, FakeExplainer()).items == 6


def test_changed_input_content_is_refused_naming_the_input(tmp_path):
    """Issue #10 item 3: same size, other content (edited word, reordered lines)."""
    source = tmp_path / "texts.txt"
    texts = write_texts(source)
    run(tmp_path, FakeExplainer())
    edited = source.read_text().replace("sentence number 7", "sentence numbxr 7")
    reordered = "\n".join(reversed(texts)) + "\n"
    for content in (edited, reordered):
        source.write_text(content)
        assert source.stat().st_size == len("\n".join(texts)) + 1
        with pytest.raises(ValueError, match="input.sha256"):
            run(tmp_path, FakeExplainer())


def test_bad_bytes_in_an_id_make_an_error_row_of_that_row_only(tmp_path):
    """Issue #10 item 4: invalid UTF-8 in a JSONL / CSV id."""
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_bytes(
        b'{"id": "a", "text": "first text"}\n'
        b'{"id": "bad\xff", "text": "second text"}\n'
        b'{"id": "c", "text": "third \xfe text"}\n'
        b'{"id": "\\ud800", "text": "lone surrogate id"}\n'
        b'{"id": "e", "text": "fifth text"}\n'
    )
    csv_file = tmp_path / "t.csv"
    csv_file.write_bytes(b"id,text\nx1,good one\nx\xff2,bad id\nx3,good three\n")
    for source, good, bad in (
        (jsonl, ["a", "e"], [1, 2, 3]),
        (csv_file, ["x1", "x3"], [1]),
    ):
        out = tmp_path / source.suffix[1:]
        DatasetJob(source, out, FakeExplainer(), show_progress=False).run()
        assert [r["id"] for r in read_jsonl(out / "results.jsonl")] == good
        errors = read_jsonl(out / "errors.jsonl")
        assert [e["index"] for e in errors] == bad
        assert "undecodable id" in errors[0]["error"] and "\\xff" in errors[0]["id"]
        assert not list(out.rglob(".tmp-*"))


def test_a_byte_order_mark_is_accepted_in_every_format(tmp_path):
    """Issue #10 item 7: BOM in CSV (header and id column), JSONL and TXT."""
    bom = b"\xef\xbb\xbf"
    inputs = {
        "t.csv": b'id,text\nr1,"good, with comma"\nr2,second\n',
        "t.jsonl": b'{"id": "r1", "text": "good, with comma"}\n'
        b'{"id": "r2", "text": "second"}\n',
        "t.txt": b"good, with comma\nsecond\n",
    }
    for name, body in inputs.items():
        (tmp_path / name).write_bytes(bom + body)
        out = tmp_path / name.replace(".", "-")
        DatasetJob(tmp_path / name, out, FakeExplainer(), show_progress=False).run()
        rows = read_jsonl(out / "results.jsonl")
        assert [r["text"] for r in rows] == ["good, with comma", "second"], name
        assert read_jsonl(out / "errors.jsonl") == []
        if name != "t.txt":
            assert [r["id"] for r in rows] == ["r1", "r2"], name


def test_out_of_memory_rows_are_retried_on_resume_bad_rows_are_not(tmp_path):
    """Issue #10 item 8: a transient failure is not stored as a permanent one."""
    lines = ["fine text", "huge text", "boom text", "", "other text"]
    (tmp_path / "texts.txt").write_text("\n".join(lines) + "\n")
    first = run(tmp_path, FakeExplainer(oom_on="huge"))
    errors = {e["index"]: e for e in read_jsonl(tmp_path / "out" / "errors.jsonl")}
    assert sorted(errors) == [1, 2, 3] and errors[1]["retryable"]
    assert not errors[2].get("retryable") and not errors[3].get("retryable")
    assert first.merged["retryable"] == 1
    second_explainer = FakeExplainer()
    second = run(tmp_path, second_explainer)
    assert "huge text" in [t for batch in second_explainer.batches for t in batch]
    assert second.merged == {"results": 3, "errors": 2, "retryable": 0, "flat": 0}
    texts = [r["text"] for r in read_jsonl(tmp_path / "out" / "results.jsonl")]
    assert texts == ["fine text", "huge text", "other text"]


class SimulatedRanks(ProcessGroup):
    """One rank of a world whose other ranks already finished (no collectives)."""

    def barrier(self):
        pass

    def reduce(self, values, op=None):
        return list(values)


def test_batches_do_not_depend_on_where_a_run_stopped_nor_on_ranks(tmp_path):
    """Issue #10 item 5: the batch plan is fixed by the input and the options."""
    write_texts(tmp_path / "texts.txt", n=37)
    single = FakeExplainer()
    run(tmp_path, single, out="single")
    expected = sha256(tmp_path / "single" / "results.jsonl")
    crashed, resumed = FakeExplainer(fail_after=3), FakeExplainer()
    with pytest.raises(SystemExit):
        run(tmp_path, crashed, out="resumed")
    run(tmp_path, resumed, out="resumed")
    assert sorted(crashed.batches[:3] + resumed.batches) == sorted(single.batches)
    assert sha256(tmp_path / "resumed" / "results.jsonl") == expected
    ranks = [FakeExplainer(), FakeExplainer()]
    with pytest.raises(SystemExit):  # rank 0 writes the manifest, then stops
        run(tmp_path, FakeExplainer(fail_after=0), out="ranks", group=SimulatedRanks())
    for rank in (1, 0):  # rank 0 merges once rank 1's shards exist
        group = SimulatedRanks(rank=rank, world_size=2)
        run(tmp_path, ranks[rank], out="ranks", group=group)
    assert sorted(ranks[0].batches + ranks[1].batches) == sorted(single.batches)
    assert ranks[0].batches == single.batches[0::2]
    assert sha256(tmp_path / "ranks" / "results.jsonl") == expected


def test_a_second_signal_drops_the_current_batch(tmp_path):
    """Issue #10 item 6: the first signal finishes the batch, a second one drops it."""
    from captum_sigma.jobs import JobInterrupted

    write_texts(tmp_path / "texts.txt")

    def terminate_twice(calls):
        if calls == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(JobInterrupted) as stopped:
        run(tmp_path, FakeExplainer(on_batch=terminate_twice))
    assert stopped.value.signum == signal.SIGTERM
    assert len(list((tmp_path / "out" / "shards").glob("*.jsonl"))) == 1
    assert not list((tmp_path / "out").rglob(".tmp-*"))
    assert run(tmp_path, FakeExplainer()).skipped == 4
