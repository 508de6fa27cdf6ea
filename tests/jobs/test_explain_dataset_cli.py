"""`captum-sigma explain-dataset` end to end on a tiny saved model.

Real processes and real numbers: a second run on a locked folder, SIGKILL / crashes
at several points then resume, two torchrun ranks with gloo, SIGTERM / SIGINT, a
changed identity, bad rows. Results are compared as bytes (SHA-256), not
approximately: the batch plan makes every run compute the same batches.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from captum_sigma.cli import main
from captum_sigma.jobs.text_adapter import TextBatchExplainer

WORDS = ["good", "bad", "film", "the", "plot", "is", "not"]
EXPLAIN = TextBatchExplainer.explain


def corpus(path, n=48):
    lines = []
    for i in range(n):
        words = [WORDS[(i * 3 + k) % len(WORDS)] for k in range(2 + i % 6)]
        lines.append(" ".join(words))
    path.write_text("\n".join(lines) + "\n")
    return lines


def command(model_dir, data, source, out, *extra, progress="--no-progress"):
    return [
        "explain-dataset",
        "--input",
        str(source),
        "--output",
        str(out),
        "--model",
        str(model_dir),
        "--data",
        str(data),
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--threads",
        "1",
        *([progress] if progress else []),
        *extra,
    ]


def script():
    found = shutil.which("captum-sigma", path=os.path.dirname(sys.executable))
    if found is None:
        pytest.skip("the captum-sigma script is not installed (pip install -e .)")
    return found


def env():
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def results(out):
    return [
        json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()
    ]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shards(out):
    """Finished shards (a temporary ``.tmp-*`` file is not one)."""
    return [p for p in (out / "shards").glob("*.jsonl") if not p.name.startswith(".")]


def shard_rows(out):
    return sum(len(p.read_text().splitlines()) for p in shards(out))


class Killed(BaseException):
    """Stands for a crash: not an Exception, so nothing catches it."""


def crash_after(monkeypatch, batches):
    """The next run dies when its batch number ``batches + 1`` starts."""
    calls = []

    def explain(self, texts):
        if len(calls) == batches:
            raise Killed
        calls.append(len(texts))
        return EXPLAIN(self, texts)

    monkeypatch.setattr(TextBatchExplainer, "explain", explain)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sample.txt"
    path.write_text("good film\nbad plot\nthe film is not good\n")
    return path


@pytest.fixture(scope="module")
def reference(tiny_model_dir, data, tmp_path_factory):
    """An uninterrupted single-process run: 48 rows, 12 batches in 2 windows."""
    folder = tmp_path_factory.mktemp("reference")
    source = folder / "texts.txt"
    lines = corpus(source)
    out = folder / "out"
    assert main(command(tiny_model_dir, data, source, out)) == 0
    return SimpleNamespace(
        source=source, lines=lines, out=out, sha=sha256(out / "results.jsonl")
    )


def test_uninterrupted_run_has_one_row_per_input_in_order(reference):
    rows = results(reference.out)
    assert [r["text"] for r in rows] == reference.lines
    assert [r["index"] for r in rows] == list(range(len(reference.lines)))
    assert all(len(r["scores"]) == len(r["tokens"]) for r in rows)
    assert len(shards(reference.out)) == 12


def test_second_run_is_refused_then_sigkill_and_resume_give_the_same_bytes(
    tiny_model_dir, data, reference, tmp_path, capsys
):
    """Issue #10 items 1 and 5: a locked folder; kill -9 leaves no stale lock."""
    out = tmp_path / "out"
    argv = command(tiny_model_dir, data, reference.source, out)
    process = subprocess.Popen(
        [script(), *argv], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while len(shards(out)) < 2:
        if process.poll() is not None or time.time() > deadline:
            pytest.fail(f"the job ended first: {process.stderr.read()[-2000:]}")
        time.sleep(0.02)
    process.send_signal(signal.SIGSTOP)  # frozen, still holding the lock
    try:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"in use by pid {process.pid}" in err and len(err.splitlines()) == 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = shard_rows(out)
    assert 0 < done < len(reference.lines), "the kill should land mid-way"
    assert not (out / "results.jsonl").exists()
    assert main(argv) == 0
    assert f"{done} already done" in capsys.readouterr().out
    assert sha256(out / "results.jsonl") == reference.sha


def test_crashes_at_three_points_then_resume_give_the_same_bytes(
    tiny_model_dir, data, reference, tmp_path, monkeypatch
):
    """Issue #10 item 5: crashes in the first length window, mid-way, in the last."""
    out = tmp_path / "out"
    argv = command(tiny_model_dir, data, reference.source, out)
    for batches, rows_done in ((1, 4), (4, 20), (4, 36)):
        crash_after(monkeypatch, batches)
        with pytest.raises(Killed):
            main(argv)
        assert shard_rows(out) == rows_done
    monkeypatch.undo()
    assert main(argv) == 0
    assert sha256(out / "results.jsonl") == reference.sha


def test_two_gloo_ranks_give_the_same_bytes(tiny_model_dir, data, reference, tmp_path):
    """Issue #10 item 5: ranks take whole batches of the same plan."""
    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "captum_sigma.cli",
        *command(tiny_model_dir, data, reference.source, out, "--device", "cpu"),
    ]
    finished = subprocess.run(
        argv, env=env(), capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"{len(reference.lines)} explained, 0 errors" in finished.stdout
    assert sha256(out / "results.jsonl") == reference.sha
    assert json.loads((out / "manifest.json").read_text())["world_size"] == 2


def test_a_resume_with_any_other_identity_is_refused_naming_the_field(
    tiny_model_dir, data, reference, tmp_path, capsys
):
    """Issue #10 items 2 and 3: --data, model files, input content, options."""
    out = tmp_path / "out"
    shutil.copytree(reference.out, out)
    other_data = tmp_path / "other.txt"
    other_data.write_text("the plot is good\nnot a film\n")
    model_copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_copy)
    edited = tmp_path / "edited.txt"
    edited.write_text(reference.source.read_text().replace("good", "gold", 1))

    def rerun(model=tiny_model_dir, data_file=data, source=reference.source, *extra):
        code = main(command(model, data_file, source, out, *extra))
        return code, capsys.readouterr()

    (model_copy / "notes.md").write_text("fine-tuned once more\n")
    cases = [
        (rerun(data_file=other_data), "explainer.r.data_sha256"),
        (rerun(model=model_copy), "explainer.weights.files_sha256"),
        (rerun(source=edited), "input.sha256"),
        (rerun(tiny_model_dir, data, reference.source, "--seed", "1"), "seed"),
        (rerun(tiny_model_dir, data, reference.source, "--threads", "2"), "threads"),
        (
            rerun(tiny_model_dir, data, reference.source, "--explained", "logit"),
            "explainer.output",
        ),
        (rerun(tiny_model_dir, data, reference.source, "--rate", "0.5"), "rate"),
    ]
    for (code, captured), field in cases:
        assert code == 2 and field in captured.err, (field, captured.err)
        assert "--restart" in captured.err
    assert sha256(out / "results.jsonl") == reference.sha
    (model_copy / "notes.md").unlink()  # same content, another path: accepted
    code, captured = rerun(model=model_copy)
    assert code == 0 and "0 explained" in captured.out
    assert sha256(out / "results.jsonl") == reference.sha
    code, captured = rerun(tiny_model_dir, other_data, reference.source, "--restart")
    assert code == 0 and f"{len(reference.lines)} explained" in captured.out


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_keeps_the_finished_batch_and_exits_with_the_resume_command(
    number, code, tiny_model_dir, data, tmp_path, monkeypatch, capsys
):
    """Issue #10 item 6: SIGTERM -> 143, SIGINT -> 130, never 0."""
    source = tmp_path / "texts.txt"
    corpus(source, n=8)
    out = tmp_path / "out"

    def explain_then_signal(self, texts):
        rows = EXPLAIN(self, texts)
        os.kill(os.getpid(), number)
        return rows

    monkeypatch.setattr(TextBatchExplainer, "explain", explain_then_signal)
    argv = command(tiny_model_dir, data, source, out, "--restart")
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "resume with: captum-sigma explain-dataset --input" in err
    assert "--restart" not in err.split("resume with:")[1]
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert shard_rows(out) == 4 and not (out / "results.jsonl").exists()
    monkeypatch.undo()
    assert main(argv[:-1]) == 0
    assert len(results(out)) == 8


def test_bad_rows_are_listed_the_job_finishes_with_exit_code_3(
    tiny_model_dir, data, tmp_path, capfd
):
    """Issue #10 items 4, 7 and 9: bad bytes anywhere, a BOM, no chatter."""
    source = tmp_path / "texts.jsonl"
    rows = [
        {"id": "ok1", "text": "good film"},
        {"id": "empty", "text": "   "},
        {"id": "long", "text": " ".join(["film"] * 40)},
        {"id": "ok2", "text": "bad plot"},
    ]
    body = "\n".join(json.dumps(r) for r in rows) + "\n{broken json\n"
    source.write_bytes(
        b"\xef\xbb\xbf"
        + body.encode()
        + b'{"id": "bytes", "text": "bad \xff"}\n'
        + b'{"id": "id\xff", "text": "good plot"}\n'
    )
    out = tmp_path / "out"
    assert main(command(tiny_model_dir, data, source, out, progress=None)) == 3
    captured = capfd.readouterr()
    assert "2 explained, 5 errors" in captured.out
    assert "Token indices" not in captured.err  # transformers' chatter is silenced
    assert "explain-dataset" not in captured.err  # no bar: stderr is not a terminal
    errors = {
        json.loads(line)["index"]: json.loads(line)
        for line in (out / "errors.jsonl").read_text().splitlines()
    }
    assert sorted(errors) == [1, 2, 4, 5, 6]
    assert "empty" in errors[1]["error"]
    assert "too long" in errors[2]["error"]
    assert "invalid JSON" in errors[4]["error"]
    assert "undecodable" in errors[5]["error"]
    assert "undecodable id" in errors[6]["error"] and errors[6]["id"] == "id\\xff"
    assert [r["id"] for r in results(out)] == ["ok1", "ok2"]
    assert not list(out.rglob(".tmp-*"))


def test_progress_bar_only_when_forced_or_on_a_terminal(
    tiny_model_dir, data, tmp_path, capfd
):
    """Issue #10 item 9: --progress forces the bar; a pipe gets none by default."""
    source = tmp_path / "texts.txt"
    corpus(source, n=4)
    assert (
        main(command(tiny_model_dir, data, source, tmp_path / "a", progress=None)) == 0
    )
    assert "explain-dataset" not in capfd.readouterr().err
    forced = command(
        tiny_model_dir, data, source, tmp_path / "b", progress="--progress"
    )
    assert main(forced) == 0
    assert "explain-dataset" in capfd.readouterr().err


def test_missing_input_is_a_one_line_error(tiny_model_dir, data, tmp_path, capsys):
    code = main(command(tiny_model_dir, data, tmp_path / "nope.txt", tmp_path / "o"))
    err = capsys.readouterr().err
    assert code == 2 and "no such file" in err and "Traceback" not in err
