"""Task schemas (code, math, repo) and loaders: HumanEval, GSM8K-100, JSONL files and repo-task directories
(QuixBugs and other repo-task fixtures are built in ``budgetflow.swe``)."""

from ._environment import (
    TEST_EXTRAS,
    EnvironmentSpecError,
    RepoEnvironment,
    detect_environment,
    environment_requirements,
    metadata_files,
    requirement_name,
)
from ._swebench import (
    PREDICTION_KEYS,
    SWEBenchError,
    is_swebench_instance,
    load_swebench,
    looks_like_swebench,
    swebench_prediction,
    write_swebench_predictions,
)
from ._jsonl import TaskFileError, load_jsonl_tasks
from ._loaders import DatasetMissing, docstring_examples, load_gsm8k, load_humaneval, normalize_number
from ._repo import (
    DEFAULT_TEST_COMMAND,
    REPO_DIR,
    SOLUTION_FILE,
    TASK_FILE,
    RepoTaskError,
    load_repo_task,
    load_repo_tasks,
    save_repo_task,
    solution_patch,
    task_dir,
)
from ._schemas import (
    CodeTask,
    MathTask,
    RepoTask,
    Task,
    kind_of,
    task_from_dict,
    task_kind,
    task_kinds,
    task_to_dict,
)

__all__ = [
    "TEST_EXTRAS", "EnvironmentSpecError", "RepoEnvironment", "detect_environment", "environment_requirements",
    "metadata_files", "requirement_name", "PREDICTION_KEYS", "SWEBenchError", "is_swebench_instance",
    "load_swebench", "looks_like_swebench", "swebench_prediction", "write_swebench_predictions", "TaskFileError",
    "load_jsonl_tasks", "CodeTask", "DatasetMissing", "MathTask", "RepoTask", "RepoTaskError", "Task", "kind_of",
    "task_from_dict", "task_kind", "task_kinds", "task_to_dict", "docstring_examples", "load_gsm8k",
    "load_humaneval", "load_repo_task", "load_repo_tasks", "normalize_number", "save_repo_task", "solution_patch",
    "task_dir", "DEFAULT_TEST_COMMAND", "REPO_DIR", "SOLUTION_FILE", "TASK_FILE"
]
