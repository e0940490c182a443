"""The README's configuration reference is the one the config dataclasses generate."""

from pathlib import Path

from mmprolong.docs import render_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_reference_is_current():
    text = README.read_text()
    assert render_readme(text) == text, "README's config reference is stale: run `python -m mmprolong.docs`"


def test_readme_holds_exactly_two_setup_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    commands = [line for line in text.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in commands
