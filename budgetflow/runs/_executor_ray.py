"""The Ray executor: jobs run on Ray actors spread over a cluster (`ray start` on each machine). Each actor opens the
shared ledger (PostgreSQL) itself, builds its own model client and sandbox, and reopens the accounts the driver
created; every reservation goes through the shared ledger, so the run's cap holds across all workers.

Needs `pip install 'budgetflow[distributed]'` (ray[default]) on every node, budgetflow importable there, and a
`--ledger postgresql://...` every node can reach.
"""

from __future__ import annotations

import logging
import os

from ..llm import OFFLINE_ENV
from ._config import RunConfig
from ._policy import Job
from ._records import JobResult

# Set for every Ray worker process: nothing phones home.
QUIET_ENV = {**OFFLINE_ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
             "RAY_USAGE_STATS_ENABLED": "0"}


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


class _RayWorker:
    """One worker slot on a Ray node (wrapped with ray.remote at start)."""

    def __init__(self, config_json: str):
        import ray

        from ._worker import WorkerContext

        config = RunConfig.model_validate_json(config_json)
        node = ray.get_runtime_context().get_node_id()
        self.ctx = WorkerContext(config, worker=f"ray:{node[:8]}:{os.getpid()}")

    def ready(self) -> str:
        _ = self.ctx.llm  # reach the model now: a bad URL or price fails here, before any job
        return self.ctx.worker

    def run(self, job_json: str) -> str:
        return self.ctx.run_job(Job.model_validate_json(job_json)).model_dump_json()


class RayExecutor:
    def __init__(self, config: RunConfig):
        self.config = config
        self.capacity = config.concurrency or 1
        self._actors: list = []
        self._idle: list = []
        self._refs: dict = {}  # object ref -> (job, actor)

    def start(self) -> str:
        try:
            import ray
        except ImportError:
            raise RayUnavailable("--executor ray needs Ray: pip install 'budgetflow[distributed]'") from None
        self.ray = ray
        env = {**QUIET_ENV, **{k: os.environ[k] for k in ("BUDGETFLOW_CACHE",) if k in os.environ}}
        try:
            ray.init(address=self.config.address, runtime_env={"env_vars": env}, logging_level=logging.WARNING,
                     log_to_driver=False)
        except Exception as err:
            raise RayUnavailable(f"cannot connect to the Ray cluster at {self.config.address!r}: {err}") from None
        cpus = ray.cluster_resources().get("CPU", 0)
        if self.capacity * self.config.ray_num_cpus > cpus:
            self.close()
            raise RayUnavailable(f"the cluster has {cpus:g} CPU(s); {self.capacity} worker(s) of "
                                 f"{self.config.ray_num_cpus:g} CPU each do not fit: lower --concurrency or "
                                 f"--ray-num-cpus, or add nodes")
        actor = ray.remote(num_cpus=self.config.ray_num_cpus, max_restarts=0)(_RayWorker)
        cfg = self.config.model_dump_json()
        self._actors = [actor.options(scheduling_strategy="SPREAD").remote(cfg) for _ in range(self.capacity)]
        try:
            workers = ray.get([a.ready.remote() for a in self._actors], timeout=600)
        except Exception as err:
            self.close()
            raise RayUnavailable(f"the Ray workers could not start: {err}") from None
        self._idle = list(self._actors)
        nodes = len({w.split(":")[1] for w in workers})
        return f"ray at {self.config.address}: {len(workers)} worker(s) on {nodes} node(s)"

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, job: Job) -> None:
        actor = self._idle.pop()
        self._refs[actor.run.remote(job.model_dump_json())] = (job, actor)

    def poll(self, timeout: float) -> list[tuple[Job, JobResult | BaseException]]:
        if not self._refs:
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            job, actor = self._refs.pop(ref)
            try:
                out.append((job, JobResult.model_validate_json(self.ray.get(ref))))
                self._idle.append(actor)
            except Exception as err:  # the actor died or the job raised: its tasks are recorded as errors
                out.append((job, err))
                self._idle.append(self._replace(actor))
        return out

    def _replace(self, actor):
        try:
            self.ray.kill(actor)
        except Exception:
            pass
        new = self.ray.remote(num_cpus=self.config.ray_num_cpus, max_restarts=0)(_RayWorker).options(
            scheduling_strategy="SPREAD").remote(self.config.model_dump_json())
        self._actors.append(new)
        return new

    def close(self, *, wait_running: bool = True) -> None:
        ray = getattr(self, "ray", None)
        if ray is None:
            return
        for a in self._actors:
            try:
                ray.kill(a)
            except Exception:
                pass
        self._actors, self._idle, self._refs = [], [], {}
        ray.shutdown()
