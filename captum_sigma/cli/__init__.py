r"""The ``captum-sigma`` command line.

Usage::

    captum-sigma explain "a gorgeous, witty film" "a tedious mess" [--out DIR]
    captum-sigma explain --file texts.txt --model path/to/hf-model --layer 3
    captum-sigma layers "rare bird has more than enough charm to make it memorable."
    captum-sigma explain-dataset --input reviews.csv --output job/
    captum-sigma compare --file texts.txt --methods Sigma IntegratedGradients
    captum-sigma explain-lm --model DIR --prompt "a 3 b 7 c 1 ; b =" --target "7"

``explain`` prints a per-token table and the prediction for every text and writes an
HTML page and a PNG per text plus one JSON file of all scores; ``layers`` draws the
words × layers heatmap of each text (PNG) and writes its matrix as JSON;
``explain-dataset`` runs a locked, resumable corpus job; ``compare`` compares
attribution methods (removal metrics of three families: the signed drop of p_c, the
distribution change and the representation change); ``explain-lm`` explains a causal
language model's continuation of a prompt. With no ``--model`` the packaged default
sentiment model is used, offline; a ``--model`` is always a local folder, never a
Hub id.

Sigma attribution: Guan et al., ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html

One module per subcommand (:mod:`~captum_sigma.cli.explain`,
:mod:`~captum_sigma.cli.layers`, :mod:`~captum_sigma.cli.explain_dataset`,
:mod:`~captum_sigma.cli.compare`, :mod:`~captum_sigma.cli.explain_lm`), each a
``register_<name>(subparsers)`` that adds its sub-parser and sets ``handler`` (or
``func``) to the function running it (``handler(args) -> exit code``), listed in
:data:`~captum_sigma.cli.parser.SUBCOMMANDS`. A subcommand module imports torch,
transformers, captum and the heavy library only inside its run function, so
``--help`` and ``--version`` answer at once.

The library is the only validator of what a flag means (a class, a layer, a device,
an explained output, a preset, a method: :mod:`captum_sigma.text.resolve`,
:func:`~captum_sigma.text.presets.get_preset`, ...); every subcommand calls those
rules on the model's ``config.json`` before loading any weights, and checks only its
flags' ranges and files itself (:mod:`~captum_sigma.cli.checks`). An error is one
line (``captum-sigma: error: ...``) and a library's ``ValueError`` or ``TypeError``
exits with code 2; the exit codes are :data:`EXIT_CODES`. Set
``CAPTUM_SIGMA_DEBUG=1`` to see tracebacks. Nothing in the library imports this
package.
"""

from captum_sigma.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_ERROR_ROWS,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_TRUNCATED,
    CliError,
)
from captum_sigma.cli.parser import SUBCOMMANDS, build_parser, main, run_handler

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CODES",
    "EXIT_ERROR_ROWS",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_TRUNCATED",
    "SUBCOMMANDS",
    "CliError",
    "build_parser",
    "main",
    "run_handler",
]
