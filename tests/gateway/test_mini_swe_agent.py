"""mini-swe-agent (the real package, unchanged) works a QuixBugs task through the gateway: its model calls go through
LiteLLM to the gateway's base URL with a budgetflow key, its commands run in a Docker container with no network on
budgetflow's Docker engine. With a small cap the gateway refuses the call that does not fit, the agent stops on that
refusal, and the cap holds whatever the agent's own cost tracking thinks (it cannot price this model at all)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from .conftest import MODEL

QUIXBUGS = Path(os.environ.get("BUDGETFLOW_CACHE", Path.home() / ".cache" / "budgetflow")) / "quixbugs"
IMAGE = os.environ.get("BUDGETFLOW_SANDBOX_IMAGE", "budgetflow/sandbox-base:bookworm")


@pytest.fixture
def docker_engine():
    import docker

    try:
        docker.from_env().ping()
    except Exception as exc:  # the test setup (make test) starts it: its absence is a broken setup, not a skip
        pytest.fail(f"the Docker engine is not running ({exc}); scripts/setup_docker.sh starts it")


def test_mini_swe_agent_stops_when_the_gateway_refuses_and_the_cap_holds(gateway, tmp_path, monkeypatch,
                                                                          docker_engine):
    import minisweagent
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.docker import DockerEnvironment
    from minisweagent.models.litellm_textbased_model import LitellmTextbasedModel

    task_dir = QUIXBUGS / "quixbugs__gcd"
    assert task_dir.is_dir(), "the QuixBugs fixtures are built by scripts/setup_swe_tasks.sh"
    repo = tmp_path / "repo"
    shutil.copytree(task_dir / "repo", repo)
    issue = __import__("json").loads((task_dir / "task.json").read_text())["issue"]
    cap = 0.03
    key = gateway.key("mini", cap)
    monkeypatch.setenv("MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT", "1")  # a 402 is final: do not back off and retry
    config = yaml.safe_load((Path(minisweagent.__file__).parent / "config" / "mini_textbased.yaml").read_text())
    model = LitellmTextbasedModel(model_name=f"openai/{MODEL}", cost_tracking="ignore_errors",
                                  model_kwargs={"api_base": gateway.base_url, "api_key": key, "max_tokens": 96,
                                                "temperature": 0.0})
    env = DockerEnvironment(image=IMAGE, cwd="/repo", timeout=20,
                            run_args=["--rm", "--network=none", "-v", f"{repo}:/repo"])
    # no limit of its own but the steps, and format errors do not end it: only the cap stops it
    agent_config = {**config["agent"], "step_limit": 200, "cost_limit": 0, "max_consecutive_format_errors": 0}
    agent = DefaultAgent(model, env, **agent_config)
    try:
        with pytest.raises(Exception) as stopped:
            agent.run(issue)
    finally:
        env.cleanup() if hasattr(env, "cleanup") else None
    assert "budget_exceeded" in str(stopped.value) or "budget exceeded" in str(stopped.value)
    assert agent.n_calls >= 2  # it worked until the cap, then was refused
    bal = gateway.ledger.account("mini").balance()
    assert 0 < bal.committed.usd <= cap and not any(bal.reserved_units.values())
    assert gateway.ledger.verify().ok and not gateway.ledger.overruns()
