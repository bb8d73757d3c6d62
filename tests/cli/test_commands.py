"""Every command teaches (help text and an example on each command, help on each option), and the small commands
refuse bad input in one line: `report` on a directory without a run, `prices`, `models`."""

from __future__ import annotations

import typer.main

from budgetflow.cli import app

from .conftest import cli, one_error_line


def _commands(group, path=("budgetflow",)):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def test_every_command_and_option_has_help_and_every_command_an_example():
    commands = dict(_commands(typer.main.get_command(app)))
    assert {"budgetflow run", "budgetflow report", "budgetflow ledger show", "budgetflow swe make-task",
            "budgetflow sandbox check", "budgetflow models prepare", "budgetflow prices show"} <= set(commands)
    for path, command in commands.items():
        assert command.help and "Example" in command.help, path
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), f"{path} {param.name}"


def test_run_help_lists_the_strategies_and_backends(workdir):
    proc = cli("run", "--help", cwd=workdir)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.replace("│", " ").split())
    strategy_help = text[text.index("--strategy "):text.index("--plugin ")]
    for name in ("sample", "best-of-n", "allocate", "majority", "beam", "mcts", "astar", "graph", "(default)"):
        assert name in strategy_help, (name, strategy_help)
    for words in ("One of: auto, process", "One of: equal, allocate", "One of: local, ray", "Example: budgetflow run"):
        assert words in text, words
    top = cli("--help", cwd=workdir)
    assert top.returncode == 0 and "never exceeded" in top.stdout
    for group in ("run", "report", "ledger", "prices", "models", "sandbox", "swe"):
        assert group in top.stdout
    assert "postgresql://" in cli("ledger", "--help", cwd=workdir).stdout


def test_a_usage_error_is_one_line(workdir):
    proc = cli("ledger", "show", "--limit", "-1", cwd=workdir)
    assert proc.returncode == 2 and "--limit" in one_error_line(proc) and "at least 0" in proc.stderr
    proc = cli("no-such-command", cwd=workdir)
    assert proc.returncode == 2 and "no-such-command" in one_error_line(proc)


def test_report_needs_a_run_directory(tmp_path, workdir):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("report", str(empty), cwd=workdir)
    assert proc.returncode == 2 and "holds no run (no run.json)" in one_error_line(proc)
    proc = cli("report", str(tmp_path / "absent"), cwd=workdir)
    assert proc.returncode == 2 and "no such directory" in one_error_line(proc)
    assert list(empty.iterdir()) == [] and not (tmp_path / "absent").exists()


def test_prices_show(workdir, tmp_path):
    ok = cli("prices", "show", "gpt-4o-mini", cwd=workdir)
    assert ok.returncode == 0 and "litellm" in ok.stdout and "0.1500" in ok.stdout
    unpriced = cli("prices", "show", "local/qwen2.5-coder-1.5b", cwd=workdir)
    assert unpriced.returncode == 1 and "has no price" in one_error_line(unpriced)
    missing = cli("prices", "show", "gpt-4o-mini", "--prices", str(tmp_path / "none.toml"), cwd=workdir)
    assert missing.returncode == 2 and "--prices" in one_error_line(missing)


def test_models_refuse_an_unknown_name(workdir):
    for args in (("verify", "nope"), ("prepare", "nope")):
        proc = cli("models", *args, cwd=workdir)
        assert proc.returncode == 2 and "unknown local model 'nope'" in one_error_line(proc)
        assert "smollm2-135m" in proc.stderr
    listed = cli("models", "list", cwd=workdir)
    assert listed.returncode == 0 and "smollm2-135m" in listed.stdout
