"""`captum-sigma explain-dataset` end to end on a tiny saved model.

Real processes: SIGKILL mid-way then resume, two torchrun ranks with gloo, bad rows.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from captum_sigma.cli import main

WORDS = ["good", "bad", "film", "the", "plot", "is", "not"]


def corpus(path, n=48):
    lines = []
    for i in range(n):
        words = [WORDS[(i * 3 + k) % len(WORDS)] for k in range(2 + i % 6)]
        lines.append(" ".join(words))
    path.write_text("\n".join(lines) + "\n")
    return lines


def command(model_dir, data, source, out, *extra):
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
        "--no-progress",
        "--threads",
        "1",
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


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sample.txt"
    path.write_text("good film\nbad plot\nthe film is not good\n")
    return path


@pytest.fixture(scope="module")
def reference(tiny_model_dir, data, tmp_path_factory):
    """An uninterrupted single-process run."""
    folder = tmp_path_factory.mktemp("reference")
    source = folder / "texts.txt"
    lines = corpus(source)
    assert main(command(tiny_model_dir, data, source, folder / "out")) == 0
    return source, lines, results(folder / "out")


def same_rows(a, b):
    assert [r["index"] for r in a] == [r["index"] for r in b]
    for x, y in zip(a, b):
        assert x["tokens"] == y["tokens"] and x["text"] == y["text"]
        assert x["predicted_label"] == y["predicted_label"]
        assert x["scores"] == pytest.approx(y["scores"], rel=1e-4, abs=1e-3)


def test_uninterrupted_run_has_one_row_per_input_in_order(reference, capsys):
    source, lines, rows = reference
    assert [r["text"] for r in rows] == lines
    assert [r["index"] for r in rows] == list(range(len(lines)))
    assert all(len(r["scores"]) == len(r["tokens"]) for r in rows)


def test_sigkill_then_resume_equals_the_uninterrupted_run(
    tiny_model_dir, data, reference, tmp_path
):
    source, lines, expected = reference
    out = tmp_path / "out"
    argv = [script(), *command(tiny_model_dir, data, source, out)]
    process = subprocess.Popen(
        argv, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    shards = out / "shards"
    while time.time() < deadline:
        if shards.exists() and len(list(shards.glob("rank*.jsonl"))) >= 2:
            break
        if process.poll() is not None:
            pytest.fail("the job ended before it could be killed")
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = sum(len(p.read_text().splitlines()) for p in shards.glob("rank*.jsonl"))
    assert 0 < done < len(lines), "the kill should land mid-way"
    assert not (out / "results.jsonl").exists()
    resumed = subprocess.run(
        argv, env=env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done} already done" in resumed.stdout
    same_rows(results(out), expected)


def test_two_gloo_ranks_give_the_same_merged_output(
    tiny_model_dir, data, reference, tmp_path
):
    source, _, expected = reference
    out = tmp_path / "out"
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "captum_sigma.cli",
        *command(tiny_model_dir, data, source, out, "--device", "cpu"),
    ]
    finished = subprocess.run(
        argv, env=env(), capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"{len(expected)} explained, 0 errors" in finished.stdout
    ranks = {p.name.split("-")[0] for p in (out / "shards").glob("rank*.jsonl")}
    assert ranks == {"rank0000", "rank0001"}
    same_rows(results(out), expected)
    assert json.loads((out / "manifest.json").read_text())["world_size"] == 2


def test_bad_rows_are_listed_and_the_job_finishes(
    tiny_model_dir, data, tmp_path, capsys
):
    source = tmp_path / "texts.jsonl"
    rows = [
        {"id": "ok1", "text": "good film"},
        {"id": "empty", "text": "   "},
        {"id": "long", "text": " ".join(["film"] * 40)},
        {"id": "ok2", "text": "bad plot"},
    ]
    body = "\n".join(json.dumps(r) for r in rows) + "\n{broken json\n"
    source.write_bytes(body.encode() + b'{"id": "bytes", "text": "bad \xff"}\n')
    out = tmp_path / "out"
    assert main(command(tiny_model_dir, data, source, out)) == 0
    assert "2 explained, 4 errors" in capsys.readouterr().out
    errors = {
        json.loads(line)["index"]: json.loads(line)
        for line in (out / "errors.jsonl").read_text().splitlines()
    }
    assert sorted(errors) == [1, 2, 4, 5]
    assert "empty" in errors[1]["error"]
    assert "too long" in errors[2]["error"]
    assert "invalid JSON" in errors[4]["error"]
    assert "undecodable" in errors[5]["error"]
    assert [r["id"] for r in results(out)] == ["ok1", "ok2"]


def test_missing_input_is_a_one_line_error(tiny_model_dir, data, tmp_path, capsys):
    code = main(command(tiny_model_dir, data, tmp_path / "nope.txt", tmp_path / "o"))
    err = capsys.readouterr().err
    assert code == 2 and "no such file" in err and "Traceback" not in err
