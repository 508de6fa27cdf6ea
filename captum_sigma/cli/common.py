"""What every ``captum-sigma`` subcommand shares: exit codes, the one-line error,
progress bars. Imports nothing heavy (``--help`` loads no torch)."""

import argparse
import signal
import sys
from typing import Any, Dict, Iterable

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CODES",
    "EXIT_ERROR_ROWS",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_TRUNCATED",
    "PROG",
    "CliError",
    "add_choice_option",
    "add_progress_options",
    "add_subcommand",
    "exit_codes_epilog",
    "print_error",
    "show_progress",
    "status",
]

#: The program's name in usage lines and messages.
PROG = "captum-sigma"
#: Exit code of a complete run.
EXIT_OK = 0
#: Exit code of a failure while running (e.g. out of memory, a disk error).
EXIT_FAILURE = 1
#: Exit code of bad input (usage errors, missing files, bad model, empty text...).
EXIT_BAD_INPUT = 2
#: Exit code of an ``explain-dataset`` job that finished with error rows.
EXIT_ERROR_ROWS = 3
#: Exit code of an ``explain`` / ``layers`` run that is complete but explained a
#: text truncated to the model's maximum length.
EXIT_TRUNCATED = 4
#: Every exit code of every subcommand and its meaning (``--help``, README).
EXIT_CODES: Dict[int, str] = {
    EXIT_OK: "complete",
    EXIT_FAILURE: "runtime failure",
    EXIT_BAD_INPUT: "usage error or bad input, found before any work",
    EXIT_ERROR_ROWS: "explain-dataset complete, with rows in errors.jsonl",
    EXIT_TRUNCATED: "explain / layers complete, but a text longer than the model's "
    "maximum was explained truncated",
    128 + signal.SIGINT: "stopped by SIGINT (Ctrl-C); rerun the job to resume it",
    128 + signal.SIGTERM: "stopped by SIGTERM; rerun the job to resume it",
}


class CliError(Exception):
    """A user error reported as one line on stderr (no traceback), exit code 2.

    The library's own rules raise ``ValueError`` (or ``TypeError``), which the
    command line reports the same way; this is for what only the command line
    checks (its flags' ranges, files and folders).
    """


def exit_codes_epilog() -> str:
    """The exit codes as the epilog of a ``--help`` page."""
    lines = [f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items()]
    return "exit codes:\n" + "\n".join(lines)


def add_subcommand(
    subparsers: Any, name: str, help: str, description: str
) -> argparse.ArgumentParser:
    """Adds a subcommand's parser; its ``--help`` ends with the exit codes.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned.
        name: The subcommand (``captum-sigma NAME``).
        help: Its line in the top-level ``--help``.
        description: The text its own ``--help`` starts with.

    Returns:
        The subcommand's parser.
    """
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_choice_option(
    parser: argparse.ArgumentParser, flag: str, choices: Iterable[str], help: str
) -> None:
    """Adds ``flag`` (default None), one of ``choices``, which its metavar lists.

    The library's rule checks the value, not argparse (the library's rules are the
    only validators), so a bad value costs the same one line as anywhere else.
    """
    parser.add_argument(
        flag, metavar="{" + ",".join(choices) + "}", default=None, help=help
    )


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: bars only on a terminal)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--progress",
        action="store_true",
        help="show progress bars even when stderr is not a terminal",
    )
    group.add_argument(
        "--no-progress",
        action="store_true",
        help="hide progress bars (by default shown only when stderr is a terminal)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars for these parsed arguments."""
    if getattr(args, "progress", False):
        return True
    if getattr(args, "no_progress", False):
        return False
    return sys.stderr.isatty()


def status(message: str, show: bool) -> None:
    """``captum-sigma: message ...`` on stderr when ``show``."""
    if show:
        print(f"{PROG}: {message} ...", file=sys.stderr, flush=True)


def print_error(error: Any) -> None:
    """``captum-sigma: error: message`` as one line on stderr."""
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
