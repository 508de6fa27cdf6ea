"""The LLM ground-truth task and the scores of benchmarks/llm_study.py; a smoke
run of benchmarks/bench_llm.py."""

import importlib.util
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_prompt_has_exactly_one_deciding_token():
    task = load("llm_task")
    tokenizer = task.make_tokenizer()
    examples = task.make_examples(50, seed=3)
    assert examples == task.make_examples(50, seed=3)  # seeded, no global state
    for example in examples:
        tokens = example.prompt.split()
        pairs, key = tokens[:-2], tokens[-1]
        assert tokens[-2] == ";" and len(pairs) in range(3, 6)
        holding = [i for i, pair in enumerate(pairs) if pair[0] == key]
        assert holding == [example.deciding]
        assert pairs[example.deciding] == key + example.target
        assert len({pair[1] for pair in pairs}) == len(pairs)  # values unique
        ids = tokenizer.encode(example.prompt)
        assert len(ids) == len(tokens) and 0 not in ids  # no <unk>


def test_study_scores_share_ties_and_need_both_tokens():
    study = load("llm_study")
    assert study.hit_at_1(torch.tensor([0.1, 3.0, 0.2, 1.0]), 1) == 1.0
    assert study.hit_at_1(torch.tensor([0.1, 3.0, 0.2, 1.0]), 3) == 0.0
    assert study.hit_at_1(torch.ones(4), 2) == 0.25  # a flat vector: 1 / n
    scores = torch.tensor([0.0, 5.0, 0.1, 0.2, 4.0])
    assert study.both_needed(scores, 1, seed=0) == 1.0
    assert study.both_needed(scores, 2, seed=0) == 0.0
    assert study.top_k(torch.tensor([1.0, 2.0, 2.0]), 1, seed=0)[0] in (1, 2)


def test_bench_llm_quick_smoke(capsys):
    assert load("bench_llm").main(["--quick", "--targets", "2", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert "LLMGradientAttribution(LayerIG)" in out and "speed-up vs LayerIG" in out
