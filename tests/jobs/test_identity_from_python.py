"""Issue #20: a corpus job run from Python guards its identity as the CLI does.

``TextBatchExplainer.describe()`` derives the identity from the explainer itself:
the explained output, every sigma option, the text settings, and hashes of the
model's tensors, of the tokenizer and of ``r``'s values. A rerun that differs in
any of them is refused naming the field; the same explainer rebuilt from scratch
resumes, byte-identically after a kill. Tiny random models built in memory (never
saved), a few short texts, two optimisation steps.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from captum_sigma import SigmaOptions
from captum_sigma.jobs import DatasetJob, JobMismatchError
from captum_sigma.jobs.text_adapter import TextBatchExplainer, text_job_settings

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["good", "bad", "film", "the", "plot", "is", "not", ".", "script"]
OTHER_WORDS = [word if word != "script" else "scripts" for word in WORDS]
DATA = ["good film", "bad plot", "the plot is not good"]
OTHER_DATA = ["the film is bad", "not a good script", "plot ."]
OPTIONS = SigmaOptions(n_steps=2)


def explainer(
    words=WORDS, lower=True, output="logit", data=DATA, options=OPTIONS, batch_size=16
):
    """A tiny random BERT classifier (seed 0) and WordPiece tokenizer, never saved."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from captum_sigma.text import TextExplainer

    torch.manual_seed(0)
    vocab = {token: index for index, token in enumerate(SPECIALS + words)}
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model = BertForSequenceClassification(config).eval()
    tokenizer = BertTokenizer(vocab=vocab, model_max_length=32, do_lower_case=lower)
    text = TextExplainer(
        model,
        tokenizer,
        data=data,
        output=output,
        options=options,
        batch_size=batch_size,
    )
    return TextBatchExplainer(text, "tiny")


def scaled_weights():
    """The base explainer with one parameter (the classifier's weight) × 1.5."""
    adapter = explainer()
    with torch.no_grad():
        adapter.explainer.model.classifier.weight.mul_(1.5)
    return adapter


def write_texts(path, n=12):
    lines = [
        " ".join(WORDS[(i * 2 + k) % len(WORDS)] for k in range(2 + i % 4))
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return lines


def run(source, out, adapter):
    job = DatasetJob(
        source, out, adapter, batch_size=3, bucket_batches=2, show_progress=False
    )
    return job.run()


def shard_names(out):
    return sorted(path.name for path in (out / "shards").glob("*.jsonl"))


class Crashing(TextBatchExplainer):
    """Dies (SystemExit: not an Exception, nothing catches it) at batch k + 1."""

    def __init__(self, adapter, batches):
        super().__init__(adapter.explainer, adapter.model_name)
        self.batches = batches
        self.calls = 0

    def explain(self, texts):
        if self.calls == self.batches:
            raise SystemExit("killed")
        self.calls += 1
        return super().explain(texts)


def recorded_identity(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest["identity"]["explainer"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted job with the base explainer (logit / r from DATA)."""
    folder = tmp_path_factory.mktemp("finished")
    source = folder / "texts.txt"
    lines = write_texts(source)
    out = folder / "out"
    summary = run(source, out, explainer())
    assert summary.complete and summary.items == len(lines)
    results = (out / "results.jsonl").read_bytes()
    return SimpleNamespace(source=source, lines=lines, out=out, results=results)


def test_the_identity_is_complete_and_the_same_after_use():
    adapter = explainer()
    identity = adapter.describe()
    assert identity["output"] == "logit"
    assert identity["options"] == asdict(OPTIONS)
    assert set(identity["options"]) == {item.name for item in fields(SigmaOptions)}
    assert identity["text"]["batch_size"] == 16
    assert identity["text"]["max_length"] == 32
    for digest in (
        identity["weights"]["tensors_sha256"],
        identity["weights"]["config_sha256"],
        identity["tokenizer"]["sha256"],
        identity["r"]["values_sha256"],
    ):
        assert len(digest) == 64
    assert explainer(output="probability").describe()["r"] is None  # r unused
    adapter.explain(["good film", "the plot is not good ."])  # caches, tokenizer state
    assert adapter.describe() == identity


def test_the_identity_is_the_same_in_another_process():
    """Another interpreter with another hash seed (set orders) gets the same
    identity for the same explainer, and another one for other weights."""
    identity = explainer().describe()
    code = (
        "import json, sys, torch; torch.set_num_threads(1); "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"from {Path(__file__).stem} import explainer, scaled_weights; "
        "print(json.dumps([explainer().describe(), scaled_weights().describe()]))"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"}
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    same, scaled = json.loads(other.stdout.splitlines()[-1])
    assert same == json.loads(json.dumps(identity))
    assert scaled != same


def test_the_command_line_records_the_same_fields_from_its_files(tmp_path):
    """One builder for both paths: the CLI's identity (before loading any weights)
    has Python's fields and settings; file hashes stand for the loaded objects."""
    python = explainer().describe()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"weights and tokenizer")
    cli = text_job_settings(
        [tmp_path / "model"],
        DATA,
        layer=None,
        target=None,
        options={**asdict(OPTIONS), "batch_size": 16},
        device="cpu",
        threads=torch.get_num_threads(),
        output="logit",
    )
    assert set(cli) == set(python) and set(cli["text"]) == set(python["text"])
    for name in ("output", "layer", "target", "options", "device", "threads"):
        assert cli[name] == python[name], name
    assert cli["text"]["batch_size"] == python["text"]["batch_size"]
    assert cli["text"]["pooling"] == python["text"]["pooling"]
    digest = cli["weights"]["files_sha256"]  # the model folder holds both
    assert len(digest) == 64 and cli["tokenizer"] == {"files_sha256": digest}
    assert len(cli["r"]["data_sha256"]) == 64
    with pytest.raises(TypeError, match="every SigmaOptions field"):
        text_job_settings(
            [tmp_path / "model"],
            DATA,
            layer=None,
            target=None,
            options={k: v for k, v in asdict(OPTIONS).items() if k != "chains"},
            device="cpu",
            threads=1,
        )


#: The rerun's explainer and the field its refusal names.
CHANGES = {
    "output": (lambda: explainer(output="probability"), "explainer.output"),
    "antithetic": (
        lambda: explainer(
            options=SigmaOptions(n_steps=2, n_samples=2, antithetic=True)
        ),
        "explainer.options.antithetic",
    ),
    "chains": (
        lambda: explainer(options=SigmaOptions(n_steps=2, chains=2)),
        "explainer.options.chains",
    ),
    "r data": (lambda: explainer(data=OTHER_DATA), "explainer.r.values_sha256"),
    "weights": (scaled_weights, "explainer.weights.tensors_sha256"),
    "lower-casing": (lambda: explainer(lower=False), "explainer.tokenizer.sha256"),
    "vocabulary": (
        lambda: explainer(words=OTHER_WORDS),
        "explainer.tokenizer.sha256",
    ),
    "batch size": (lambda: explainer(batch_size=2), "explainer.text.batch_size"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_rerun_with_another_explainer_is_refused_naming_the_field(
    change, finished, tmp_path
):
    out = tmp_path / "out"
    shutil.copytree(finished.out, out)
    build, field = CHANGES[change]
    with pytest.raises(JobMismatchError, match="another job") as refusal:
        run(finished.source, out, build())
    assert field in str(refusal.value)
    assert (out / "results.jsonl").read_bytes() == finished.results


def test_a_killed_job_resumes_byte_identically_only_with_the_same_explainer(
    finished, tmp_path
):
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        run(finished.source, out, Crashing(explainer(), batches=2))
    shards = shard_names(out)
    assert len(shards) == 2 and not (out / "results.jsonl").exists()
    with pytest.raises(JobMismatchError, match="explainer.weights.tensors_sha256"):
        run(finished.source, out, scaled_weights())
    assert shard_names(out) == shards
    summary = run(finished.source, out, explainer())  # rebuilt from scratch
    assert summary.complete and summary.skipped == 6
    assert summary.items == len(finished.lines) - 6
    assert (out / "results.jsonl").read_bytes() == finished.results
    assert recorded_identity(out) == recorded_identity(finished.out)


def test_rows_carry_the_uncertainty_and_the_summary_counts_flat_rows(tmp_path):
    """Each result row has its standard errors, chains and flat flag; the merged
    counts say how many explanations were flat (issue #17)."""
    texts = tmp_path / "texts.txt"
    texts.write_text("good film\nbad plot\n", encoding="utf-8")
    job = DatasetJob(texts, tmp_path / "job", explainer(), show_progress=False)
    summary = job.run()
    rows = [json.loads(line) for line in (tmp_path / "job" / "results.jsonl").open()]
    for row in rows:
        assert len(row["standard_error"]) == len(row["tokens"])
        assert (
            row["chains"] == OPTIONS.chains
            and row["units"]["scores"] == "nats per token"
        )
        assert isinstance(row["flat"], bool)
    assert summary.merged["flat"] == sum(row["flat"] for row in rows)
