"""Verifiers: unit tests in the sandbox (visible for selection, hidden for scoring only), model-generated tests with
agreement ranking, execution clustering, majority vote, and a judge that uses the model's own probabilities."""

from ._protocol import Verdict, Verifier, verifier, verifiers, verify_all  # first: the others register here
from ._clustering import Cluster, cluster_by_behaviour, inputs_from_asserts
from ._code import program_for, trim_completion
from ._generated_tests import (
    GeneratedTestsVerifier,
    RankedCandidate,
    agreement_ranking,
    generate_tests,
    parse_asserts,
    rank_by_generated_tests,
)
from ._hidden import HiddenTestsMissing, passes_hidden_tests
from ._judge import Judgement, LogprobJudge
from ._metered import metered_run, worst_case_cpu
from ._repo_tests import RepoTestReport, RepoTestRunner
from ._unit_tests import TestOutcome, TestReport, UnitTestVerifier
from ._vote import MajorityVote, Vote, cut_at_answer, extract_answer, majority_vote
from ._scoring import Score, score, scorer, scorers

__all__ = [
    "Verdict", "Verifier", "verifier", "verifiers", "verify_all", "GeneratedTestsVerifier", "MajorityVote",
    "Score", "score", "scorer", "scorers", "metered_run", "worst_case_cpu",
    "Cluster", "HiddenTestsMissing", "Judgement", "LogprobJudge", "RankedCandidate", "RepoTestReport",
    "RepoTestRunner", "TestOutcome", "TestReport", "UnitTestVerifier", "Vote", "agreement_ranking",
    "cluster_by_behaviour", "cut_at_answer", "extract_answer", "generate_tests", "inputs_from_asserts",
    "majority_vote", "parse_asserts", "passes_hidden_tests", "program_for", "rank_by_generated_tests",
    "trim_completion",
]  # working copies (repo_files, write_files, unified_diff, scoring_files) are budgetflow.workspace's
