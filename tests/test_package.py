"""The package's public surface."""

import subprocess
import sys

import pytest

import captum_sigma


def test_every_public_name_resolves():
    for name in captum_sigma.__all__:
        assert getattr(captum_sigma, name) is not None
    with pytest.raises(AttributeError):
        captum_sigma.NotAThing  # noqa: B018


def test_importing_the_package_is_lazy():
    code = "import sys, captum_sigma; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_a_lazy_export_named_like_its_module_stays_the_export():
    """``captum_sigma.evaluation.compare`` is the function, as with eager imports,
    also after another name has loaded the module ``captum_sigma.evaluation.compare``
    (and the evaluation package itself loads no torch)."""
    code = (
        "import importlib, sys; import captum_sigma.evaluation; "
        "print('torch' in sys.modules); "
        "from captum_sigma.evaluation import ComparisonResult; "
        "from captum_sigma.evaluation import compare; "
        "module = importlib.import_module('captum_sigma.evaluation.compare'); "
        "print(compare is module.compare is captum_sigma.evaluation.compare)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True"], out.stderr
