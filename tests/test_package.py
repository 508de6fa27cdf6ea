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
