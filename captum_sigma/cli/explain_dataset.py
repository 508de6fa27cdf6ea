"""``captum-sigma explain-dataset``: a corpus job (locked, resumable,
torchrun-sharded)."""

import argparse
import shlex
from pathlib import Path
from typing import Any, Dict

from captum_sigma.cli.checks import check_input, check_output_dir
from captum_sigma.cli.common import (
    EXIT_ERROR_ROWS,
    EXIT_OK,
    PROG,
    CliError,
    add_subcommand,
    print_error,
    show_progress,
)
from captum_sigma.cli.model import ModelInfo
from captum_sigma.cli.text_options import (
    add_explained_option,
    add_run_options,
    check_layer_and_target,
    check_run_options,
    load_explainer,
    sigma_options,
)

__all__ = ["register_explain_dataset", "run_explain_dataset"]

#: The job's argument names (``DatasetJob``'s messages) as ``explain-dataset`` flags.
_JOB_FLAGS = {
    "output_dir": "--output",
    "input_path": "--input",
    "batch_size": "--batch-size",
    "restart=True": "--restart",
}

#: ``explain-dataset``'s line in ``captum-sigma --help``.
HELP = "explain a whole corpus: streaming, resumable, torchrun-shardable"
#: What ``captum-sigma explain-dataset --help`` starts with.
DESCRIPTION = (
    "Explain every text of a .txt (one per line), .jsonl or .csv "
    "file (UTF-8, a BOM is accepted) into DIR: one atomic shard per batch of a "
    "fixed batch plan, a manifest with the job's identity, then results.jsonl "
    "(one row per good input, in input order) and errors.jsonl (bad rows with "
    "the reason). One process at a time may use DIR (a lock). Rerun the same "
    "command to resume after a crash, kill or SIGTERM; a run whose options, "
    "model files, --data or input differ is refused (--restart starts over). "
    "Under `torchrun --nproc_per_node=N` rank r takes the batches numbered r "
    "modulo N and rank 0 merges."
)


def register_explain_dataset(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``explain-dataset`` to ``subparsers`` (``handler``:
    :func:`run_explain_dataset`)."""
    parser = add_subcommand(
        subparsers, "explain-dataset", help=HELP, description=DESCRIPTION
    )
    parser.add_argument("--input", required=True, metavar="FILE")
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument(
        "--text-field", default="text", help="JSONL/CSV field (%(default)s)"
    )
    parser.add_argument(
        "--layer", type=int, help="explain this encoder layer's hidden state (1-based)"
    )
    parser.add_argument("--target", help="class index or label name to explain")
    add_explained_option(parser)
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard what DIR holds (shards, results, manifest) and start over",
    )
    add_run_options(parser, pages=False)
    parser.set_defaults(handler=run_explain_dataset, batch_size=32)
    return parser


def run_explain_dataset(args: argparse.Namespace) -> int:
    """Runs ``explain-dataset``; returns the exit code.

    0: complete without error rows; 3: complete with rows in errors.jsonl; 130 /
    143: stopped by SIGINT / SIGTERM after finishing (or dropping) the current
    batch, with the command that resumes it.
    """
    from captum_sigma.jobs import DatasetJob, init_process_group
    from captum_sigma.text.resolve import resolve_device

    source = check_input(args.input, args.text_field)
    check_output_dir(args.output, "--output")
    info, device, data = check_run_options(args)
    check_layer_and_target(args, info)
    group = init_process_group(str(device))
    try:
        if group.distributed and device.type == "cuda":
            device = resolve_device(f"cuda:{group.local_rank}", "--device")
        progress = show_progress(args) and group.rank == 0
        job = DatasetJob(
            source,
            Path(args.output),
            lambda: _batch_explainer(args, info, device, data),
            text_field=args.text_field,
            batch_size=args.batch_size,
            group=group,
            show_progress=progress,
            settings=_job_settings(args, info, device, data),
            restart=args.restart,
        )
        summary = job.run()
    except ValueError as error:
        raise CliError(_job_flags(str(error))) from None
    finally:
        group.close()
    return _report_job(args, summary, group.rank)


def _job_flags(message: str) -> str:
    """A job's error message with its argument names replaced by the CLI's flags."""
    for name, flag in _JOB_FLAGS.items():
        message = message.replace(name, flag)
    return message


def _batch_explainer(
    args: argparse.Namespace, info: ModelInfo, device: Any, data: Any
) -> Any:
    """The job's explainer (its own bar shows progress, so none per batch)."""
    from captum_sigma.jobs.text_adapter import TextBatchExplainer

    explainer = load_explainer(args, info, device, data, progress=False)
    return TextBatchExplainer(
        explainer, info.name, layer=args.layer, target=args.target
    )


def _job_settings(
    args: argparse.Namespace, info: ModelInfo, device: Any, data: Any
) -> Dict[str, Any]:
    from dataclasses import asdict

    import torch

    from captum_sigma.jobs.text_adapter import text_job_settings

    options = sigma_options(args.steps, args.seed, preset=args.preset, rate=args.rate)
    return text_job_settings(
        info.files,
        data,
        layer=args.layer,
        target=args.target,
        output=args.explained,
        options={**asdict(options), "batch_size": args.batch_size},
        device=device.type,
        threads=torch.get_num_threads(),
    )


def _report_job(args: argparse.Namespace, summary: Any, rank: int) -> int:
    """Prints the run's summary (rank 0) and returns its exit code."""
    if summary.interrupted:
        if rank == 0:
            print(summary.line())
            print_error(
                f"{summary.line().split(':')[0]}; finished batches are kept; resume "
                f"with: {_resume_command(args)}"
            )
        return 128 + int(summary.stop_signal)
    merged = summary.merged
    if rank == 0:
        print(summary.line())
        output = Path(args.output)
        print(
            f"wrote {output / 'results.jsonl'} ({merged['results']} rows, "
            f"{merged.get('flat', 0)} of them flat: no token stands out at this "
            f"budget) and {output / 'errors.jsonl'} ({merged['errors']} rows)"
        )
        if merged.get("retryable"):
            print(
                f"{merged['retryable']} rows failed for a reason that may pass on "
                f"retry (out of memory); rerun to retry them: {_resume_command(args)}"
            )
    return EXIT_ERROR_ROWS if merged["errors"] else EXIT_OK


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that resumes this job (``--restart`` dropped)."""
    argv = [item for item in getattr(args, "argv", []) if item != "--restart"]
    return shlex.join([PROG, *argv])
