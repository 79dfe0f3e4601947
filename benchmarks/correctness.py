"""The CUDA correctness tests, run by the GPU check as a subprocess with a time cap.

``pytest -m triton tests/ops tests/layers``: every test that runs a Triton kernel (on CUDA the tests put
their tensors there, see ``tests/helpers.py``), verbose so that each outcome is one line of the log; a run
that the cap kills still reports what it got through. Nothing is installed: the interpreter running the check
runs pytest, and the checkout's ``src`` goes first on ``PYTHONPATH`` so the tests exercise this tree.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from .env import REPO_ROOT

TEST_PATHS = ("tests/ops", "tests/layers")
MARKER = "triton"
MAX_FAIL = 25
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
_LINE = re.compile(r"^(?P<id>\S+::\S.*?) (?P<outcome>PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
_SUMMARY = re.compile(r"^=+ (?P<body>.*\d+ (?:passed|failed|error|errors|skipped|deselected).*) =+$")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
_NAMES = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error", "SKIPPED": "skipped", "XFAIL": "xfailed"}


def pytest_command(
    paths: Sequence[str] = TEST_PATHS, marker: str = MARKER, max_fail: int = MAX_FAIL
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-m",
        marker,
        "-v",
        "--tb=line",
        "-rfE",
        f"--maxfail={max_fail}",
        *paths,
    ]


def parse_log(text: str) -> dict[str, Any]:
    """Counts (from pytest's summary line when the run finished, else from the per-test lines) and the ids
    of the tests that failed."""
    counts = dict.fromkeys(OUTCOMES, 0)
    failures: list[str] = []
    summary: Optional[str] = None
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            outcome = _NAMES.get(m["outcome"], "xpassed")
            counts[outcome] += 1
            if outcome in ("failed", "error") and m["id"] not in failures:
                failures.append(m["id"])
            continue
        s = _SUMMARY.match(line.strip())
        if s:
            summary = s["body"]
    if summary is not None:
        final = dict.fromkeys(OUTCOMES, 0)
        for n, word in _COUNT.findall(summary):
            key = "error" if word.startswith("error") else word
            if key in final:
                final[key] = int(n)
        counts = final
    return {"counts": counts, "failures": failures, "summary": summary}


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """End the test run and what it started (its own process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def run_tests(cmd: Sequence[str], cap_s: float, log_path: Path, cwd: Path = REPO_ROOT) -> dict[str, Any]:
    """Run ``cmd`` with its output in ``log_path``, for at most ``cap_s`` seconds.

    Status: ``passed``, ``failed`` (some test failed or errored), ``timed_out`` (the cap ended it: the counts
    are those it got through), or ``error`` (pytest itself did not run: missing, or a collection error; the
    log's tail says why).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd / "src"), env.get("PYTHONPATH")) if p)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    timed_out = False
    with log_path.open("wb") as log:
        try:
            proc = subprocess.Popen(
                list(cmd), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            return {"command": shlex.join(cmd), "status": "error", "reason": str(exc), "seconds": 0.0}
        try:
            rc: Optional[int] = proc.wait(timeout=max(1.0, cap_s))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            rc = proc.returncode
    text = log_path.read_text(errors="replace")
    parsed = parse_log(text)
    counts = parsed["counts"]
    ran = counts["passed"] + counts["failed"] + counts["error"] + counts["skipped"]
    if timed_out:
        status = "timed_out"
    elif counts["failed"] or counts["error"]:
        status = "failed"
    elif rc == 0 and ran:
        status = "passed"
    else:
        status = "error"
    return {
        "command": shlex.join(cmd),
        "status": status,
        "returncode": rc,
        "seconds": round(time.perf_counter() - start, 1),
        "cap_s": round(cap_s, 1),
        "counts": counts,
        "failures": parsed["failures"][:40],
        "summary": parsed["summary"],
        "log": str(log_path),
        "tail": text.splitlines()[-15:] if status == "error" else [],
    }
