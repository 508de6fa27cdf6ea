"""TextExplainer refuses a device this machine does not have (issue #10 item 9)."""

import pytest
import torch
from text_models import make_tiny_distilbert, make_tokenizer

from captum_sigma.text import TextExplainer


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_device_is_a_value_error_naming_device():
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        TextExplainer(make_tiny_distilbert(), make_tokenizer(), device="cuda")


def test_unknown_device_is_a_value_error_naming_device():
    with pytest.raises(ValueError, match="device"):
        TextExplainer(make_tiny_distilbert(), make_tokenizer(), device="gpu9")
