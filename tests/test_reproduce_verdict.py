"""The verdict rule of ``mmprolong reproduce``: interval arithmetic on pooled per-item scores, whichever arm wins."""

import pytest

from mmprolong.errors import ConfigError
from mmprolong.reproduce import ARMS, FINDINGS, ReproduceConfig
from mmprolong.reproduce.findings import Finding, combine, comparison_verdict, judge, scored_lengths
from mmprolong.reproduce.run import make_plan
from mmprolong.stats import difference95

PAIR = Finding("pair", "A beats B", {"A": "balanced", "B": "target"}, (("A", "B"),), "all")


def scores(right: int, n: int) -> list[float]:
    return [1.0] * right + [0.0] * (n - right)


@pytest.mark.parametrize("interval, verdict", [((0.01, 0.4), "agrees"), ((-0.4, -0.01), "disagrees"),
                                               ((-0.1, 0.2), "inconclusive"), ((0.0, 0.3), "inconclusive"),
                                               ((-0.3, 0.0), "inconclusive")])
def test_a_comparison_agrees_only_when_its_interval_excludes_zero(interval, verdict):
    assert comparison_verdict(interval) == verdict


def test_a_finding_agrees_when_all_comparisons_agree_and_disagrees_when_any_disagrees():
    assert combine(["agrees", "agrees"]) == "agrees"
    assert combine(["agrees", "inconclusive"]) == "inconclusive"
    assert combine(["agrees", "disagrees"]) == "disagrees"
    assert combine(["inconclusive", "disagrees"]) == "disagrees"
    assert combine([]) == "inconclusive"


@pytest.mark.parametrize("right_a, right_b, verdict", [(45, 10, "agrees"), (10, 45, "disagrees"),
                                                       (25, 24, "inconclusive")])
def test_judge_uses_the_newcombe_interval_of_the_pooled_difference(right_a, right_b, verdict):
    a, b = scores(right_a, 50), scores(right_b, 50)
    got, (comparison,) = judge(PAIR, {"A": a, "B": b})
    assert got == verdict == comparison["verdict"]
    assert comparison["ci95"] == list(difference95(a, b))
    assert comparison["difference"] == pytest.approx((right_a - right_b) / 50)
    assert comparison["n"] == [50, 50]
    low, high = comparison["ci95"]
    assert low < comparison["difference"] < high


def test_judge_is_symmetric_in_the_arms():
    """Swapping which arm the claim favours mirrors the interval and flips agrees into disagrees."""
    a, b = scores(40, 60), scores(15, 60)
    swapped = Finding("pair", "B beats A", PAIR.arms, (("B", "A"),), "all")
    v1, (c1,) = judge(PAIR, {"A": a, "B": b})
    v2, (c2,) = judge(swapped, {"A": a, "B": b})
    assert (v1, v2) == ("agrees", "disagrees")
    assert c2["ci95"] == pytest.approx([-c1["ci95"][1], -c1["ci95"][0]])


def test_fractional_scores_use_welch_and_an_empty_arm_is_inconclusive():
    a, b = [0.5, 0.6, 0.7, 0.55] * 10, [0.1, 0.2, 0.15, 0.05] * 10
    verdict, (comparison,) = judge(PAIR, {"A": a, "B": b})
    assert verdict == "agrees" and comparison["ci95"] == list(difference95(a, b))
    verdict, (comparison,) = judge(PAIR, {"A": a, "B": []})
    assert verdict == "inconclusive" and comparison["difference"] is None and comparison["ci95"] == [-1.0, 1.0]


def test_scored_lengths():
    grid = [2048, 4096, 8192, 16384]
    assert scored_lengths(FINDINGS["length"], grid, 4096) == [8192, 16384]
    assert scored_lengths(FINDINGS["match"], grid, 4096) == [2048]
    assert scored_lengths(FINDINGS["mix"], grid, 4096) == grid


def test_every_finding_names_known_arms_and_compares_its_own_labels():
    for finding in FINDINGS.values():
        assert set(finding.arms.values()) <= set(ARMS)
        assert {label for pair in finding.better_than for label in pair} <= set(finding.arms)
    # shared arms are trained once: the six findings need 11 distinct runs per seed
    assert len(ReproduceConfig().arms()) == 11
    assert ReproduceConfig(findings=["mix", "short"]).arms() == ["balanced", "mix-2:8", "short-20"]


@pytest.mark.parametrize("fields, name", [({"findings": ["lenght"]}, "findings"), ({"seeds": 0}, "seeds"),
                                          ({"train_tokens": 1000}, "train_tokens"),
                                          ({"model": "ckpt"}, "model"), ({"pdfs": "pdfs"}, "pdfs"),
                                          ({"recipe": "r.yaml", "start": "start"}, "start")])
def test_bad_settings_name_their_field(fields, name):
    with pytest.raises(ConfigError) as err:
        ReproduceConfig.from_dict(fields)
    assert err.value.field == name


@pytest.mark.parametrize("fields, name", [({"findings": ["match"], "lengths": [4096, 8192]}, "lengths"),
                                          ({"findings": ["length"], "lengths": [2048, 4096]}, "lengths"),
                                          ({"recipe": "missing.yaml", "model": "ckpt"}, "recipe")])
def test_settings_checked_against_the_plan_name_their_field(fields, name):
    """Lengths are judged against the window (the recipe's, or the miniature's 4K) before any work."""
    with pytest.raises(ConfigError) as err:
        make_plan(ReproduceConfig.from_dict(fields))
    assert err.value.field == name


def test_defaults_resolve_to_the_miniature_budget_grid_and_seeds():
    plan, config = make_plan(ReproduceConfig())
    assert config.train_tokens == 65_536 and config.lengths == [2048, 4096, 8192, 16384] and plan.window == 4096
    assert plan.niah_lengths == plan.heldout_lengths == config.lengths
    assert config.seeds == 2  # the six findings: 2 seeds fit the hour
    assert make_plan(ReproduceConfig(findings=["rope"]))[1].seeds == 1  # one finding: 1 seed fits 15 minutes
    assert make_plan(ReproduceConfig(findings=["rope"], seeds=3))[1].seeds == 3


# the miniature's buckets (quickstart.LONG_SYNTH) and synth's default at the paper's 128K window
MINI = ([1024, 2048, 3072, 4097], 4096)
PAPER = ([8192, 16384, 32768, 65536, 131073], 131072)


def test_shaped_arms_follow_the_buckets_and_the_window():
    assert ARMS["eval-length"].synth_fields(*MINI) == {"distribution": "custom", "bucket_weights": [1.0, 0.0, 0.0]}
    # at 128K the scored length is 64K: every sample in the 32K-64K bucket
    assert ARMS["eval-length"].synth_fields(*PAPER)["bucket_weights"] == [0.0, 0.0, 1.0, 0.0]
    assert ARMS["short-20"].synth_fields(*MINI) == {"short_share": 0.2, "short_tokens": 1023}  # below 1K
    assert ARMS["short-20"].synth_fields(*PAPER) == {"short_share": 0.2, "short_tokens": 4096}  # synth's default
    assert ARMS["target"].synth_fields(*PAPER) == {"distribution": "target", "target_share": 0.8}
    with pytest.raises(ConfigError, match="half the window"):
        ARMS["eval-length"].synth_fields([3000, 4097], 4096)
