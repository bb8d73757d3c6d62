"""The supervisor of a repository test run (not imported by budgetflow: its text runs in the sandbox as
``python -I -c <this file>``; see repo_tests.py).

Reads its settings and a per-run marker from standard input, makes itself non-dumpable (a test running as the same
uid cannot read its memory through /proc), writes the pytest plugin, runs the test command once per group of
arguments under the run's CPU and wall-clock limits, and prints the collected outcomes on one line behind the marker
(which the tests never see). Standard library only: it runs under the sandbox's interpreter."""

import json
import os
import resource
import signal
import subprocess
import sys
import time


def _not_dumpable():
    try:  # not dumpable: a test running as our uid cannot open /proc/<our pid>/mem or /fd
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except Exception:
        pass


def _pytest_args(cfg):
    """Arguments added to every pytest process: the plugin, the root, pytest-timeout's default when installed."""
    extra = ["-p", "_bf_report", "--rootdir", os.getcwd()]
    if cfg["per_test_timeout"]:
        try:
            import importlib.util
            if importlib.util.find_spec("pytest_timeout") is not None:
                extra.append(f"--timeout={cfg['per_test_timeout']:g}")
        except Exception:
            pass
    return extra + cfg["extra_args"]


def _used():
    """CPU seconds this supervisor and its finished children used so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime + me.ru_utime + me.ru_stime


def _run_groups(cfg, env, extra, log, start):
    """One pytest process per group, each limited to the CPU and wall time left. Returns (exit codes, notes,
    groups not run, timed out)."""
    cpu_left = float(cfg["cpu_s"])
    deadline = start + float(cfg["deadline_s"])
    work = os.getcwd()
    codes, notes, skipped_groups = [], [], []
    timed_out = False
    for args in cfg["groups"]:
        remaining_cpu = cpu_left - _used()
        remaining_wall = deadline - time.monotonic()
        if remaining_cpu < 1 or remaining_wall < 0.5:
            skipped_groups.append(args)
            continue
        soft = max(1, int(remaining_cpu))

        def _limit(soft=soft):
            resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))

        log.write(("\n$ " + " ".join(cfg["command"] + args) + "\n").encode())
        log.flush()
        try:
            proc = subprocess.Popen(cfg["command"] + extra + args, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=work, preexec_fn=_limit,
                                    start_new_session=True)
        except OSError as e:
            notes.append(f"cannot run {cfg['command'][0]!r}: {e}")
            codes.append(127)
            break
        try:
            codes.append(proc.wait(timeout=remaining_wall))
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            codes.append(-9)
            notes.append(f"stopped after {time.monotonic() - start:.1f} s (the run's time limit)")
        finally:
            try:  # nothing the tests started may outlive their group
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
    return codes, notes, skipped_groups, timed_out


def _records(results_path):
    """The plugin's outcome lines (lines that are not JSON objects are ignored)."""
    records = []
    try:
        with open(results_path, errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    records.append(rec)
    except OSError:
        pass
    return records


def _tail(log_path, size_limit):
    try:
        with open(log_path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - size_limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def main():
    cfg = json.loads(sys.stdin.read())
    sys.stdin.close()
    mark = cfg.pop("mark")
    _not_dumpable()
    start = time.monotonic()
    state = os.path.join(os.getcwd(), cfg["state_dir"])
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, "_bf_report.py"), "w") as f:
        f.write(cfg["plugin"])
    results_path = os.path.join(state, "results.jsonl")
    select_path = ""
    if cfg["tests"] is not None:
        select_path = os.path.join(state, "select.json")
        with open(select_path, "w") as f:
            json.dump(cfg["tests"], f)
    env = dict(os.environ)
    paths = [state] + [os.path.join(os.getcwd(), p) for p in cfg.get("paths", [])]  # src layouts
    env.update(BF_REPORT_OUT=results_path, BF_REPORT_SELECT=select_path, PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])))
    if cfg["command"] and cfg["command"][0] in ("python", "python3", "{python}"):
        cfg["command"][0] = sys.executable  # the interpreter this runs on: the sandbox's, or its environment's
    env.pop("PYTEST_ADDOPTS", None)
    extra = _pytest_args(cfg)

    log_path = os.path.join(state, "output.log")
    with open(log_path, "ab") as log:
        codes, notes, skipped_groups, timed_out = _run_groups(cfg, env, extra, log, start)

    if skipped_groups:
        notes.append("not run, CPU or time budget spent: " + ", ".join(" ".join(g) for g in skipped_groups))
    payload = {"records": _records(results_path), "codes": codes, "notes": notes, "timed_out": timed_out,
               "tail": _tail(log_path, cfg["tail_bytes"]), "not_run": [a for g in skipped_groups for a in g]}
    sys.stdout.flush()
    sys.stdout.write("\n" + mark + json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
