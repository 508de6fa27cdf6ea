"""LLMSigmaAttribution: Captum's LLM API, batched rows, invariants, model state."""

import matplotlib
import pytest
import torch
from captum.attr import (
    LayerIntegratedGradients,
    LLMAttributionResult,
    LLMGradientAttribution,
    TextTokenInput,
)
from lm_models import MODELS, WindowLM, make_gpt2, make_llama, make_tokenizer
from rounding import (
    AMPLIFICATION_BOUND,
    INJECTED,
    MIN_ROUNDING,
    perturbed_outputs,
)

from captum_sigma import LayerSigmaAttribution, LLMSigmaAttribution, SigmaOptions
from captum_sigma.llm import (
    DEFAULT_EXPLAINED,
    EXPLAINED,
    NextTokenRows,
    explained_values,
    next_token_forward,
)

matplotlib.use("Agg")

#: The paper's advice for ``scale``: about 10 × the std of the embedding matrix
#: (0.02 in these random models); fewer steps than the default to stay fast.
OPTIONS = SigmaOptions(scale=2.0, n_steps=12)
PROMPT = "w5 w9 w12 w7 w3 w21"
TARGET = "w8 w14 w6 w30"
PROMPT_IDS = torch.tensor([5, 9, 12, 7, 3, 21])
TARGET_IDS = torch.tensor([8, 14, 6, 30])
#: The second prompt token is skipped (neither perturbed nor scored).
INTERPRETABLE = torch.tensor([True, False, True, True, True, True])


def explainer(model, tokenizer=None):
    tokenizer = tokenizer or make_tokenizer()
    return LLMSigmaAttribution(
        LayerSigmaAttribution(model, model.get_input_embeddings()), tokenizer
    )


def sigma_of_rows(model, rows, explained=DEFAULT_EXPLAINED, options=OPTIONS, ibs=None):
    """``σ`` of every row, ``(B, T)``, through the class's batched solver."""
    solve = explainer(model)._solver(explained, None, options, ibs, False)
    return solve(rows)[1]


def single_row_sigma(model, ids, perturbed, target, explained, options=OPTIONS):
    """``σ`` of one problem solved alone, by LayerSigmaAttribution on a forward
    written independently of the package's LLM code (no padding, no gather)."""

    def forward(input_ids):
        logits = model(input_ids=input_ids).logits[:, -1:]
        targets = torch.full((input_ids.shape[0], 1), int(target))
        return explained_values(logits, targets, explained)

    _, sigma = LayerSigmaAttribution(forward, model.get_input_embeddings()).attribute(
        ids.unsqueeze(0),
        token_mask=perturbed.unsqueeze(0),
        options=options,
        return_input_shape=False,
        return_sigma=True,
    )
    return sigma[0]


def forward_rounding(model, rows):
    """Relative difference of the explained positions' logits, padded batch vs
    each row alone (measured on this machine), at least half a float32 ulp."""
    worst = 0.0
    with torch.no_grad():
        padded = model(
            input_ids=rows.input_ids, attention_mask=rows.attention_mask
        ).logits
        for k in range(rows.batch_size):
            width = int(rows.attention_mask[k].sum())
            alone = model(input_ids=rows.input_ids[k : k + 1, :width]).logits[0, -1]
            change = (padded[k, rows.positions[k, 0]] - alone).abs().max()
            worst = max(worst, float(change / alone.abs().max()))
    return max(worst, MIN_ROUNDING)


# -- rows --------------------------------------------------------------------------


def test_rows_are_right_padded_prompt_plus_target_prefix():
    rows = NextTokenRows.per_token(PROMPT_IDS, TARGET_IDS, INTERPRETABLE, pad_id=0)
    n, m = len(PROMPT_IDS), len(TARGET_IDS)
    assert rows.input_ids.shape == (m, n + m - 1)
    for k in range(m):
        real = n + k
        assert rows.input_ids[k, :real].tolist() == (
            PROMPT_IDS.tolist() + TARGET_IDS[:k].tolist()
        )
        assert rows.attention_mask[k].tolist() == [1] * real + [0] * (m - 1 - k)
        assert rows.positions[k].tolist() == [real - 1]
        assert rows.targets[k].tolist() == [TARGET_IDS[k]]
        # only the prompt's interpretable tokens carry noise
        assert rows.perturbed[k].tolist() == INTERPRETABLE.tolist() + [False] * (m - 1)
    part = rows.select(0, 2)  # all-padding columns of these rows are dropped
    assert part.input_ids.shape == (2, n + 1)
    joint = NextTokenRows.joint(PROMPT_IDS, TARGET_IDS, INTERPRETABLE)
    assert joint.input_ids[0].tolist() == PROMPT_IDS.tolist() + TARGET_IDS[:-1].tolist()
    assert joint.positions[0].tolist() == list(range(n - 1, n + m - 1))
    assert joint.targets[0].tolist() == TARGET_IDS.tolist()


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("explained", EXPLAINED)
def test_padded_batch_forward_equals_each_row_alone(arch, explained):
    """Attention mask and positions of the padded rows are right (GPT-2, Llama
    with rotary and grouped-query attention, Qwen2)."""
    model = MODELS[arch]()
    rows = NextTokenRows.per_token(PROMPT_IDS, TARGET_IDS, INTERPRETABLE, pad_id=0)
    with torch.no_grad():
        batched = next_token_forward(model, explained)(
            rows.input_ids, rows.attention_mask, rows.positions, rows.targets
        )
        assert batched.shape == (len(TARGET_IDS), 1)
        for k in range(rows.batch_size):
            ids = torch.cat([PROMPT_IDS, TARGET_IDS[:k]]).unsqueeze(0)
            logits = model(input_ids=ids).logits[:, -1]
            alone = explained_values(logits, TARGET_IDS[k : k + 1], explained)
            assert torch.allclose(batched[k, 0], alone[0], rtol=1e-5, atol=1e-5)


def test_explained_values_agree_with_their_definitions():
    logits = torch.randn(3, 2, 7, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[1, 4], [0, 6], [3, 3]])
    log_p = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1))[..., 0]
    assert torch.allclose(explained_values(logits, targets, "log_prob"), log_p)
    assert torch.allclose(
        explained_values(logits, targets, "log_odds"),
        log_p - torch.log1p(-log_p.exp()),
        atol=1e-5,
    )
    assert torch.equal(
        explained_values(logits, targets, "logit"),
        logits.gather(-1, targets.unsqueeze(-1))[..., 0],
    )


# -- batched rows = single-row solves ------------------------------------------------


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_each_row_equals_its_single_row_solve(arch):
    """Captum's loop solves one output token per call; the batched rows must give
    the same ``σ`` up to float rounding amplified by at most AMPLIFICATION_BOUND
    (test_amplification_is_bounded measures that factor for these models)."""
    model = MODELS[arch]()
    rows = NextTokenRows.per_token(PROMPT_IDS, TARGET_IDS, INTERPRETABLE, pad_id=0)
    batched = sigma_of_rows(model, rows)
    n = len(PROMPT_IDS)
    worst = 0.0
    for k in range(len(TARGET_IDS)):
        ids = torch.cat([PROMPT_IDS, TARGET_IDS[:k]])
        perturbed = torch.cat([INTERPRETABLE, torch.zeros(k, dtype=torch.bool)])
        alone = single_row_sigma(
            model, ids, perturbed, TARGET_IDS[k], DEFAULT_EXPLAINED
        )
        got, want = batched[k, :n][INTERPRETABLE], alone[:n][INTERPRETABLE]
        worst = max(worst, float(((got - want).abs() / want).max()))
        # never-perturbed positions: the skipped token, the target prefix, padding
        assert torch.isnan(batched[k, ~rows.perturbed[k]]).all()
    assert worst <= AMPLIFICATION_BOUND * forward_rounding(model, rows)


@pytest.mark.parametrize("explained", EXPLAINED)
def test_amplification_is_bounded(explained):
    """The solver turns a relative perturbation of the logits (INJECTED, the size
    of float32 rounding) into a relative change of σ at most AMPLIFICATION_BOUND
    times larger: the factor the row-equality test allows."""
    model = make_llama()
    rows = NextTokenRows.per_token(PROMPT_IDS, TARGET_IDS, INTERPRETABLE, pad_id=0)
    regularization = None
    if explained == "logit":  # the logit's offset is arbitrary: r from texts
        regularization = explainer(model).estimate_regularization(
            ["w3 w4 w5 w6 w7 w8", "w9 w1 w12 w30 w2"], explained
        )
    solve = explainer(model)._solver(explained, regularization, OPTIONS, None, False)
    base = solve(rows)[1]
    with perturbed_outputs(model.lm_head):
        perturbed = solve(rows)[1]
    present = ~torch.isnan(base)
    change = ((perturbed - base).abs() / base)[present].max()
    factor = float(change) / INJECTED
    assert 0 < factor <= AMPLIFICATION_BOUND


def test_chunks_of_internal_batch_size_bound_the_forward_and_keep_rows():
    model = make_gpt2()
    rows = NextTokenRows.per_token(PROMPT_IDS, TARGET_IDS, INTERPRETABLE, pad_id=0)
    whole = sigma_of_rows(model, rows)
    seen = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"].shape[0]),
        with_kwargs=True,
    )
    try:
        chunked = sigma_of_rows(model, rows, ibs=4)
    finally:
        handle.remove()
    assert max(seen) <= 4
    present = ~torch.isnan(whole)
    assert torch.equal(present, ~torch.isnan(chunked))
    change = ((chunked - whole).abs() / whole)[present].max()
    assert change <= AMPLIFICATION_BOUND * forward_rounding(model, rows)


# -- Captum's LLM API ----------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_result_follows_captums_llm_contract(arch):
    model = MODELS[arch]()
    tokenizer = make_tokenizer()
    inp = TextTokenInput(PROMPT, tokenizer, skip_tokens=["w9"])
    result = explainer(model, tokenizer).attribute(inp, target=TARGET, options=OPTIONS)
    assert isinstance(result, LLMAttributionResult)
    assert result.input_tokens == ["w5", "w12", "w7", "w3", "w21"]  # w9 skipped
    assert result.output_tokens == TARGET.split()
    assert result.token_attr.shape == (4, 5) and result.seq_attr.shape == (5,)
    assert torch.isfinite(result.token_attr).all()
    assert (result.token_attr >= 0).all()  # information, nats
    assert torch.allclose(result.seq_attr, result.token_attr.sum(0))
    # output_probs: each target token's teacher-forced probability
    ids = torch.cat([PROMPT_IDS, TARGET_IDS[:-1]]).unsqueeze(0)
    with torch.no_grad():
        probs = model(input_ids=ids).logits[0, len(PROMPT_IDS) - 1 :].softmax(-1)
    expected = probs[torch.arange(4), TARGET_IDS]
    assert torch.allclose(result.output_probs, expected, rtol=1e-5)
    for plot in (result.plot_token_attr, result.plot_seq_attr):
        figure, _ = plot()
        matplotlib.pyplot.close(figure)


def test_the_last_prompt_token_matters_most_to_a_random_model():
    """In a random decoder the next-token output is dominated by the current
    token (residual stream): the first output token needs the last prompt token
    most. Seeds fixed; a sign that the scores follow the model."""
    model = make_gpt2()
    tokenizer = make_tokenizer()
    result = explainer(model, tokenizer).attribute(
        TextTokenInput(PROMPT, tokenizer), target=TARGET, options=OPTIONS
    )
    assert int(result.token_attr[0].argmax()) == len(PROMPT_IDS) - 1


def test_ignored_and_causally_later_tokens_score_zero():
    """WindowLM's output at position t reads tokens t − 1 and t only: for output
    token 0 the prompt tokens before the last two are ignored; for output token 1
    only the last prompt token is read; output token 2 reads target tokens only
    (every prompt token is then before its window)."""
    model = WindowLM().eval()
    tokenizer = make_tokenizer()
    result = explainer(model, tokenizer).attribute(
        TextTokenInput(PROMPT, tokenizer), target=TARGET, options=OPTIONS
    )
    scores = result.token_attr
    read = torch.zeros_like(scores, dtype=torch.bool)
    read[0, -2:] = True
    read[1, -1] = True
    assert (scores[~read] < 1e-3).all(), scores
    # read tokens: at least 10x the ignored tokens' bound (0.02-0.5 nats over
    # seeds 0-2 at rate 0.1 and 1; the entropy weight 1 keeps fewer nats)
    assert (scores[read] > 1e-2).all(), scores


def test_seq_attr_joint_is_one_objective_over_the_continuation():
    model = make_llama()
    tokenizer = make_tokenizer()
    sigma = explainer(model, tokenizer)
    inp = TextTokenInput(PROMPT, tokenizer)
    summed = sigma.attribute(inp, target=TARGET, options=OPTIONS)
    joint = sigma.attribute(inp, target=TARGET, options=OPTIONS, seq_attr="joint")
    assert torch.equal(joint.token_attr, summed.token_attr)
    assert joint.seq_attr.shape == (len(PROMPT_IDS),)
    assert (joint.seq_attr >= 0).all() and torch.isfinite(joint.seq_attr).all()
    # one σ per token for the whole continuation: not the sum of per-token nats
    assert not torch.allclose(joint.seq_attr, summed.seq_attr)


def test_generated_target_is_the_greedy_continuation():
    model = make_gpt2()
    tokenizer = make_tokenizer()
    inp = TextTokenInput(PROMPT, tokenizer)
    result = explainer(model, tokenizer).attribute(
        inp, gen_args={"max_new_tokens": 3, "do_sample": False}, options=OPTIONS
    )
    with torch.no_grad():
        generated = model.generate(
            PROMPT_IDS.unsqueeze(0), max_new_tokens=3, do_sample=False
        )[0, len(PROMPT_IDS) :]
    assert result.output_tokens == tokenizer.convert_ids_to_tokens(generated.tolist())
    assert result.token_attr.shape == (3, len(PROMPT_IDS))


def test_tokenizer_padding_side_does_not_change_the_result():
    """Rows are always right-padded by the class (the prompt keeps its positions
    and hence its noise), whatever the tokenizer's padding side."""
    model = make_llama()
    results = []
    for side in ("left", "right"):
        tokenizer = make_tokenizer(padding_side=side)
        results.append(
            explainer(model, tokenizer).attribute(
                TextTokenInput(PROMPT, tokenizer), target=TARGET, options=OPTIONS
            )
        )
    assert torch.equal(results[0].token_attr, results[1].token_attr)


def test_model_state_is_left_untouched():
    model = make_gpt2()
    model.train()  # dropout 0.1 by default: set to 0 so training mode is harmless
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.transformer.h[0].eval()  # a mixed train/eval state must survive
    modes = {name: m.training for name, m in model.named_modules()}
    use_cache = model.config.use_cache
    rng = torch.get_rng_state()
    tokenizer = make_tokenizer()
    sigma = explainer(model, tokenizer)
    sigma.attribute(TextTokenInput(PROMPT, tokenizer), target=TARGET, options=OPTIONS)
    sigma.attribute(
        TextTokenInput(PROMPT, tokenizer),
        target=TARGET,
        options=OPTIONS,
        seq_attr="joint",
    )
    assert all(p.grad is None for p in model.parameters())
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert model.config.use_cache == use_cache
    assert torch.equal(torch.get_rng_state(), rng)
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks


def test_bad_input_is_refused():
    model = make_gpt2()
    tokenizer = make_tokenizer()
    sigma = explainer(model, tokenizer)
    inp = TextTokenInput(PROMPT, tokenizer)
    with pytest.raises(ValueError, match="explained must be one of"):
        sigma.attribute(inp, target=TARGET, explained="prob")
    with pytest.raises(ValueError, match="seq_attr must be one of"):
        sigma.attribute(inp, target=TARGET, seq_attr="mean")
    with pytest.raises(ValueError, match="target has no tokens"):
        sigma.attribute(inp, target=torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="internal_batch_size must be positive"):
        sigma.attribute(inp, target=TARGET, internal_batch_size=0)
    with pytest.raises(TypeError, match="TextTokenInput"):
        sigma.attribute(PROMPT, target=TARGET)
    with pytest.raises(AssertionError):  # Captum's own check of the method
        LLMSigmaAttribution(
            LayerIntegratedGradients(model, model.get_input_embeddings()), tokenizer
        )
    # the regularization must be a scalar for the scalar explained value
    with pytest.raises(ValueError, match="does not broadcast"):
        sigma.attribute(inp, target=TARGET, regularization=torch.ones(3))


def test_regularization_from_texts_is_the_spread_of_the_explained_value():
    model = make_llama()
    tokenizer = make_tokenizer()
    sigma = explainer(model, tokenizer)
    texts = ["w3 w4 w5 w6 w7 w8", "w9 w1 w12 w30 w2"]
    r = sigma.estimate_regularization(texts, explained="log_prob")
    values = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer.encode(text)])
            log_p = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
            values.append(log_p[torch.arange(ids.shape[1] - 1), ids[0, 1:]])
    assert torch.allclose(r, torch.cat(values).std(unbiased=False), rtol=1e-5)
    result = sigma.attribute(
        TextTokenInput(PROMPT, tokenizer),
        target=TARGET,
        explained="log_prob",
        regularization=r,
        options=OPTIONS,
    )
    assert (result.token_attr >= 0).all()


def test_captum_gradient_wrapper_gives_the_same_shapes():
    """Same prompt, same target: Captum's LayerIntegratedGradients through
    LLMGradientAttribution has the shapes of our result (drop-in)."""
    model = make_gpt2()
    tokenizer = make_tokenizer()
    inp = TextTokenInput(PROMPT, tokenizer, skip_tokens=["w9"])
    ig = LLMGradientAttribution(
        LayerIntegratedGradients(model, model.get_input_embeddings()), tokenizer
    ).attribute(inp, target=TARGET, n_steps=4)
    ours = explainer(model, tokenizer).attribute(inp, target=TARGET, options=OPTIONS)
    assert ig.token_attr.shape == ours.token_attr.shape
    assert ig.input_tokens == ours.input_tokens
    assert ig.output_tokens == ours.output_tokens


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="bf16/fp16 forward passes are only checked on CUDA (CPU half-precision "
    "kernels are slow and not what such models run on)",
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_on_cuda(dtype):
    model = make_llama().cuda()
    tokenizer = make_tokenizer()
    inp = TextTokenInput(PROMPT, tokenizer)
    full = explainer(model, tokenizer).attribute(inp, target=TARGET, options=OPTIONS)
    half = explainer(model.to(dtype), tokenizer).attribute(
        inp, target=TARGET, options=OPTIONS
    )
    assert torch.isfinite(half.token_attr).all() and (half.token_attr >= 0).all()
    assert int(half.token_attr[0].argmax()) == int(full.token_attr[0].argmax())
    assert all(p.grad is None for p in model.parameters())
