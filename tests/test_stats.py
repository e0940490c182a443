"""95% intervals against published reference values."""

import pytest

from mmprolong.stats import difference95, interval95, mean_of_means95, wilson


def test_wilson_matches_the_textbook_values():
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # Wilson (1927); Newcombe (1998), table I
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = wilson(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 1.0)


def test_newcombe_difference_matches_the_paper_example():
    """Newcombe (1998), method 10: 56/70 - 48/80 = 0.2, interval 0.0524 to 0.3339."""
    a, b = [1] * 56 + [0] * 14, [1] * 48 + [0] * 32
    assert difference95(a, b) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    low, high = difference95(b, a)
    assert (low, high) == pytest.approx((-0.3339, -0.0524), abs=1e-4)


def test_fractional_scores_use_the_t_interval_clipped():
    low, high = interval95([0.5, 0.5, 0.75, 0.25])  # mean 0.5, sd 0.2041, t(3) = 3.182
    assert (low, high) == pytest.approx((0.5 - 3.182 * 0.2041 / 2, 0.5 + 3.182 * 0.2041 / 2), abs=1e-3)
    assert interval95([0.9, 1.0, 0.95]) [1] == 1.0
    assert interval95([]) == (0.0, 1.0)


def test_mean_of_means_narrows_with_more_items_and_contains_the_mean():
    few = mean_of_means95([[1, 0], [1, 1, 0]])
    many = mean_of_means95([[1, 0] * 20, [1, 1, 0] * 20])
    mean = (0.5 + 2 / 3) / 2
    assert few[0] < many[0] < mean < many[1] < few[1]
    assert mean_of_means95([[1, 1, 0]]) == interval95([1, 1, 0])  # one group: that group's interval
