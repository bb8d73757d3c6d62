"""The pytest plugin of a repository test run (not imported by budgetflow: its text is written into the sandbox as
``_bf_report.py`` and loaded there with ``pytest -p _bf_report``; see repo_tests.py).

Appends one JSON object per line to ``$BF_REPORT_OUT``, flushed at once, so a run that crashes or is killed half-way
still reports the tests it finished. ``$BF_REPORT_SELECT`` names a JSON list of node ids to keep (selection is done
here, not on pytest's command line, so a node id that no longer exists fails that test instead of the whole run).
Standard library and pytest's hook names only: it runs under whatever interpreter the project's tests use."""

import json as _json
import os as _os

_LIMIT = 4000  # characters of failure text kept per record
_OUT = None
_SELECT = None

if __name__ == "_bf_report":  # loaded by pytest in the sandbox (imported from budgetflow, it stays inert)
    _OUT = open(_os.environ["BF_REPORT_OUT"], "a", buffering=1)
    if _os.environ.get("BF_REPORT_SELECT"):
        with open(_os.environ["BF_REPORT_SELECT"]) as _f:
            _SELECT = set(_json.load(_f))


def _emit(obj):
    _OUT.write(_json.dumps(obj) + "\n")
    _OUT.flush()


def pytest_collection_modifyitems(session, config, items):
    if _SELECT is None:
        return
    keep = [it for it in items if it.nodeid in _SELECT]
    drop = [it for it in items if it.nodeid not in _SELECT]
    items[:] = keep
    if drop:
        config.hook.pytest_deselected(items=drop)


def pytest_collectreport(report):
    if report.failed:
        text = str(report.longreprtext or "")
        _emit({"kind": "collect", "id": report.nodeid, "text": text[-_LIMIT:]})


def pytest_runtest_logreport(report):
    if report.failed:
        outcome = "failed"  # in setup or teardown too: an error spoils the test
    elif report.skipped:
        outcome = "passed" if hasattr(report, "wasxfail") else "skipped"  # xfail counts as passing, like SWE-bench
    else:
        outcome = "passed"
    if report.when == "call" or outcome != "passed":  # setup/teardown matter only when they did not pass
        text = str(report.longreprtext or "") if outcome == "failed" else ""
        _emit({"kind": "test", "id": report.nodeid, "when": report.when, "outcome": outcome, "text": text[-_LIMIT:],
               "duration": round(float(getattr(report, "duration", 0.0) or 0.0), 4)})
