"""SWE-style issue resolution, task side: build repository-task fixtures — QuixBugs from the pyimprove wheel
(``load_quixbugs``), bugs injected into real projects (``make_tasks``), and the ready-made tasks made from pinned
sdists (``ensure_swe_fixtures``). Builds run tests in the sandbox and spend on a capped ledger account (the
caller's, or a root of their own on ``<cache>/fixture-builds.db``)."""

from ._cache import FIXTURE_BUILD_CPU_SECONDS, build_account, cache_root
from ._fixtures import SWE_PINS, SWE_PROJECTS, ensure_swe_fixtures, fixtures_root, sdist_path
from ._issue_text import symptom, trim_failure, write_issue
from ._make_task import Attempt, MakeResult, Progress, make_tasks
from ._mutations import Mutation, find_mutations
from ._quixbugs import load_quixbugs, quixbugs_report
from ._quixbugs_sources import QUIXBUGS_FIXES, QUIXBUGS_PIN, QUIXBUGS_WHEEL, quixbugs_sources, quixbugs_wheel
from ._sources import ARCHIVES, MakeTaskError, is_test_path, source_modules, unpack_source

__all__ = [
    "ARCHIVES", "FIXTURE_BUILD_CPU_SECONDS", "QUIXBUGS_FIXES", "QUIXBUGS_PIN", "QUIXBUGS_WHEEL", "SWE_PINS",
    "SWE_PROJECTS", "Attempt", "MakeResult", "MakeTaskError", "Mutation", "Progress", "build_account",
    "cache_root", "ensure_swe_fixtures", "find_mutations", "fixtures_root", "is_test_path", "load_quixbugs",
    "make_tasks", "quixbugs_report", "quixbugs_sources", "quixbugs_wheel", "sdist_path", "source_modules",
    "symptom", "trim_failure", "unpack_source", "write_issue"
]
