"""What a causal language model's explanation can explain, importable without torch.

The explained next-token values (:data:`EXPLAINED`, defined in
:mod:`captum_sigma.llm.forward`), the default one and their rule
(:func:`check_explained`), shared by :class:`~captum_sigma.llm.LLMSigmaAttribution`
and ``captum-sigma explain-lm`` (whose ``--help`` loads no torch).
"""

from typing import Any, Tuple

__all__ = ["DEFAULT_EXPLAINED", "EXPLAINED", "check_explained"]

#: The explained values :class:`~captum_sigma.llm.LLMSigmaAttribution` accepts.
EXPLAINED: Tuple[str, ...] = ("log_prob", "logit", "log_odds")
#: The default, chosen by the ground-truth study of docs/llm.md
#: (benchmarks/llm_study.py, default ``SigmaOptions()``): self-normalised, the
#: log-probability and the log-odds tied on finding the deciding token (hit@1
#: 1.00 and 0.99 averaged over the two noise caps; the logit 0.49) and the
#: pre-registered tie-break (both needed tokens on top: 0.915 against 0.725)
#: picked the log-probability, Captum's own target. Divided by ``r`` from texts
#: instead, the log-probability of a confident prediction saturates: both@2 fell
#: from 0.99 to 0.02 at the default noise cap.
DEFAULT_EXPLAINED = "log_prob"


def check_explained(explained: Any, name: str = "explained") -> str:
    """Returns ``explained`` or raises ``ValueError`` naming the choices
    (``name``: how the caller calls the argument, e.g. ``"--explained"``)."""
    if explained not in EXPLAINED:
        raise ValueError(f"{name} must be one of {EXPLAINED}, got {explained!r}")
    return explained
