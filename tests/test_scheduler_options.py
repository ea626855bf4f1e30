"""Every policy validates every option in one place (its options' validate(), called by
bench.build_scheduler_options), with one exception type, before any model is loaded."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bsbench.backends.policy_build import build_scheduler_options
from bsbench.errors import OptionsError
from bsbench.schedulers.option_rules import Interval, flag
from bsbench.schedulers.registry import all_schedulers

NAN, INF = math.nan, math.inf

# (scheduler, option, a bad value, what the message must say); every option of every policy appears
BAD = [
    ("static", "max_batch_size", 0, ">= 1"),
    ("static", "max_batch_size", 2.5, "an integer"),
    ("static", "batch_timeout", -0.1, ">= 0"),
    ("static", "batch_timeout", INF, "a finite number"),
    ("static", "oom_policy", "retry", "one of fail, split"),
    ("continuous", "max_num_seqs", 0, ">= 1"),
    ("continuous", "max_num_batched_tokens", 0, ">= 1"),
    ("continuous", "chunked_prefill", "yes", "true or false"),
    ("continuous", "watermark", 1.0, "in [0, 1)"),
    ("continuous", "watermark", NAN, "a finite number"),
    ("uellm", "max_batch_size", 0, ">= 1"),
    ("uellm", "predictor", "psychic", "one of oracle, noisy, learned"),
    ("uellm", "predictor_sigma", -1.0, ">= 0"),
    ("uellm", "predictor_data", 5, "a string"),
    ("uellm", "predictor_tokenizer", None, "a string"),
    ("uellm", "predictor_cache", 1.0, "a string"),
    ("uellm", "predictor_class_length", "mean", "one of median, upper"),
    ("uellm", "slo_weight", INF, "a finite number"),
    ("uellm", "length_weight", NAN, "a finite number"),
    ("uellm", "batch_threshold", -1.0, ">= 0"),
    ("uellm", "overhead_factor", 0.0, "> 0"),
    ("uellm", "default_slo_s", 0.0, "> 0"),
    ("uellm", "on_underpredict", "ignore", "one of extend, preempt, fail"),
    ("uellm", "extend_fallback", "extend", "one of preempt, fail"),
    ("uellm", "generation_cap", 1, "true or false"),
    ("uellm", "cap_margin", -1, ">= 0"),
    ("uellm", "slo_expired", "drop", "one of serve, reject"),
    ("bucket", "max_num_seqs", 0, ">= 1"),
    ("bucket", "bucket_priority", "fifo", "one of sjf, ljf"),
    ("bucket", "bucket_boundaries", "5,3", "strictly increasing"),
    ("bucket", "bucket_boundaries", "five", "comma list"),
    ("bucket", "bucket_nmax_mode", "exact", "one of paper, actual"),
    ("bucket", "bucket_theta", 0.0, "in (0, 1)"),
    ("bucket", "bucket_theta", 1.0, "in (0, 1)"),
    ("bucket", "bucket_l_max", 1, "0 (the model's context) or at least 2"),
    ("bucket", "bucket_l_max", -4, ">= 0"),
    ("bucket", "bucket_safety", 0.0, "in (0, 1]"),
    ("bucket", "bucket_safety", 1.5, "in (0, 1]"),
    ("bucket", "bucket_interval", -1.0, ">= 0"),
    ("bucket", "bucket_interval", INF, "a finite number"),
    ("bucket", "bucket_queue_threshold", -1, ">= 0"),
    ("bucket", "bucket_max_buckets", 0, ">= 1"),
    ("bucket", "bucket_halflife", -1.0, ">= 0"),
    ("bucket", "bucket_max_prefill_tokens", -1, ">= 0"),
    ("distserve", "max_prefill_tokens", 0, ">= 1"),
    ("distserve", "max_prefill_seqs", 0, ">= 1"),
    ("distserve", "max_num_seqs", 0, ">= 1"),
    ("distserve", "max_num_batched_tokens", 0, ">= 1"),
]


@pytest.mark.parametrize("scheduler, option, value, expected", BAD)
def test_a_bad_option_is_one_options_error_naming_its_flag(scheduler, option, value, expected):
    with pytest.raises(OptionsError) as caught:
        build_scheduler_options(all_schedulers()[scheduler], {option: value})
    message = str(caught.value)
    assert flag(option) in message and expected in message, message
    assert len(message.splitlines()) == 1


def test_every_option_of_every_policy_is_checked_and_the_defaults_pass():
    for name, cls in all_schedulers().items():
        build_scheduler_options(cls, {})
        covered = {option for scheduler, option, _, _ in BAD if scheduler == name}
        assert covered == {f.name for f in dataclasses.fields(cls.Options)}, name


def test_a_numeric_option_without_a_range_is_a_policy_bug():
    from bsbench.schedulers.option_rules import PolicyOptions, check_fields

    @dataclasses.dataclass(slots=True)
    class Forgotten(PolicyOptions):
        size: int = 1

        def validate(self) -> None:
            check_fields(self, {})

    with pytest.raises(TypeError, match="no range for size"):
        Forgotten().validate()


def test_interval_ends():
    share = Interval(0, 1, low_open=True)
    assert 1 in share and 0.5 in share and 0 not in share and str(share) == "in (0, 1]"
    assert str(Interval(1)) == ">= 1" and str(Interval(0, low_open=True)) == "> 0"


@pytest.mark.parametrize("command", [
    ["run", "--scheduler", "bucket", "--bucket-safety", "0"],
    ["run", "--scheduler", "static", "--batch-timeout", "-1"],
    ["sweep", "--schedulers", "static,bucket", "--rates", "1", "--bucket-theta", "1"],
])
def test_the_cli_refuses_bad_options_before_loading_the_model(bsbench, tmp_path, command):
    # the model does not exist: an options error first means the options were checked before the model load
    result = bsbench(*command, "--model", tmp_path / "no-such-model", "--quiet", "--out", tmp_path)
    assert result.code == 2
    assert "--bucket-" in result.err or "--batch-timeout" in result.err, result.err
    assert "cannot load" not in result.err and len(result.err.strip().splitlines()) == 1
