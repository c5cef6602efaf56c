"""first_line: the one line of a UserError keeps the cause of a multi-line message."""

import pytest
import torch

from bench.errors import first_line


def load_error(sd: dict) -> RuntimeError:
    with pytest.raises(RuntimeError) as info:
        torch.nn.Sequential(torch.nn.Linear(2, 3)).load_state_dict(sd)
    return info.value


def test_state_dict_size_mismatch_keeps_the_mismatch():
    e = load_error({"0.weight": torch.zeros(4, 2), "0.bias": torch.zeros(4)})
    assert str(e).splitlines()[0] == "Error(s) in loading state_dict for Sequential:"
    line = first_line(e)
    assert "\n" not in line
    assert line.startswith("Error(s) in loading state_dict for Sequential: size mismatch for ")
    assert "0.weight: copying a param with shape torch.Size([4, 2])" in line
    assert line.endswith("(and 1 more)")


def test_missing_keys_and_plain_messages():
    line = first_line(load_error({"0.weight": torch.zeros(3, 2)}))
    assert line.endswith('Missing key(s) in state_dict: "0.bias".')
    assert first_line(ValueError("bad value\nsecond line")) == "bad value"
    assert first_line(KeyError()) == ""
