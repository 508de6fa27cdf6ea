"""The top-level parser and the rules every subcommand runs under.

:func:`main` parses the command line and runs the subcommand's handler through
:func:`run_handler`, which turns an error into one line on stderr
(``captum-sigma: error: ...``) and its exit code: the library's ``ValueError`` /
``TypeError`` and the command line's :class:`~captum_sigma.cli.common.CliError`
are bad input (2). Building the parser imports no torch, so ``--help`` and
``--version`` answer at once.
"""

import argparse
import contextlib
import os
import signal
import sys
import warnings
from typing import Any, Callable, Iterator, List, Optional, Sequence

from captum_sigma.cli import compare, explain, explain_dataset, explain_lm, layers
from captum_sigma.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_OK,
    PROG,
    CliError,
    exit_codes_epilog,
    print_error,
)

__all__ = ["DEBUG_VARIABLE", "SUBCOMMANDS", "build_parser", "main", "run_handler"]

#: Set to 1 to see the traceback of an error instead of the one-line message.
DEBUG_VARIABLE = "CAPTUM_SIGMA_DEBUG"

#: Functions adding one subcommand each (``function(subparsers)``), in help order.
SUBCOMMANDS: List[Callable[[Any], Any]] = [
    explain.register_explain,
    layers.register_layers,
    explain_dataset.register_explain_dataset,
    compare.register_compare,
    explain_lm.register_explain_lm,
]


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors become :class:`CliError` (one line)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CliError(f"{message} (see `{self.prog} --help`)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit code.

    Args:
        argv: Arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        One of :data:`~captum_sigma.cli.common.EXIT_CODES`; an error is printed as
        one line on stderr.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help / --version
        return stop.code if isinstance(stop.code, int) else EXIT_OK
    except CliError as error:
        print_error(error)
        return EXIT_BAD_INPUT
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    args.argv = argv
    return run_handler(handler, args)


def run_handler(handler: Callable[[argparse.Namespace], int], args: Any) -> int:
    """Runs a subcommand's handler with the CLI's rules; returns the exit code.

    Warnings become one line each, transformers' chatter is silenced, and errors
    become one line with their exit code: :class:`CliError`, ``ValueError`` and
    ``TypeError`` (the library's rules) are bad input (2), ``RuntimeError``,
    ``OSError`` and ``ImportError`` failures (1), a second Ctrl-C or SIGTERM
    ``128 + signal``.
    """
    try:
        with _one_line_warnings(), _quiet_third_party():
            return int(handler(args))
    except KeyboardInterrupt as stop:
        number = int(getattr(stop, "signum", signal.SIGINT))
        print_error(f"interrupted by {signal.Signals(number).name}")
        return 128 + number
    except (CliError, ValueError, TypeError) as error:
        _reraise_when_debugging()
        print_error(error)
        return EXIT_BAD_INPUT
    except (RuntimeError, OSError, ImportError) as error:
        _reraise_when_debugging()
        print_error(error)
        return EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of :data:`SUBCOMMANDS`."""
    from captum_sigma import __version__

    parser = _Parser(
        prog=PROG,
        description="Sigma attribution (Guan et al., ICML 2019) of text models: the "
        "information of each token, as tables, HTML pages, figures and JSON.",
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def _reraise_when_debugging() -> None:
    """With ``CAPTUM_SIGMA_DEBUG=1`` errors keep their traceback."""
    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        raise


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Shows every warning as one line on stderr (``captum-sigma: warning: ...``)."""

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        text = " ".join(str(message).split())
        print(f"{PROG}: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        previous = warnings.showwarning
        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = previous


@contextlib.contextmanager
def _quiet_third_party() -> Iterator[None]:
    """Silences transformers' logging and progress bars ("Loading weights", "Token
    indices sequence length ...") for the duration of a command."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
