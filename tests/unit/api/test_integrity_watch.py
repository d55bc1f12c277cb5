"""The watcher's handling of a check that finds the log tampered with, or cannot run: what
the metrics then say (the process itself is in tests/http/test_audit_watch.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError

from api import integrity_watch
from api.administration import Integrity
from api.integrity_watch import Findings, FindingsCollector, check_once
from api.runtime import Runtime
from audit import TamperError
from tests.http.test_row_seals import set_back


def _metrics(findings: Findings) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(FindingsCollector(findings))
    return {
        sample.name + "".join(f"/{v}" for v in sample.labels.values()): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def _raising(exc: Exception) -> Callable[[Runtime], Integrity]:
    def check(runtime: Runtime) -> Integrity:
        raise exc

    return check


def test_before_any_check_completes_the_start_and_the_failure_count_are_served() -> None:
    """The staleness alert counts from the start until a first check completes."""
    assert _metrics(Findings(started_at=5.0)) == {
        "shanakht_integrity_started_timestamp_seconds": 5.0,
        "shanakht_integrity_failed_checks_total": 0.0,
    }


def test_a_log_that_fails_verification_is_served_as_such(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    findings = Findings(0.0, completed_at=1.0, log_verified=True, log_entries=10, differ=3)
    monkeypatch.setattr(integrity_watch, "check_integrity", _raising(TamperError("bad", seq=7)))
    with caplog.at_level(logging.ERROR, "shanakht.integrity"):
        check_once(runtime, findings, clock=lambda: 50.0)
    served = _metrics(findings)
    assert served["shanakht_integrity_log_verified"] == 0.0
    assert served["shanakht_integrity_checked_timestamp_seconds"] == 50.0
    assert served["shanakht_integrity_rows/log"] == 0.0, "a failed log says nothing of rows"
    assert caplog.messages == ["audit log FAILED verification at seq 7"]


def test_a_check_that_cannot_run_is_counted_and_leaves_the_last_result_to_go_stale(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The last completed check keeps its time, so the staleness alert fires if the database
    stays out of reach; the log names the kind of error only (its text may name the server)."""
    findings = Findings(0.0, completed_at=1.0, log_verified=True)
    down = OperationalError("SELECT 1", {}, Exception("could not connect to db.internal:5432"))
    monkeypatch.setattr(integrity_watch, "check_integrity", _raising(down))
    with caplog.at_level(logging.ERROR, "shanakht.integrity"):
        check_once(runtime, findings, clock=lambda: 50.0)
    served = _metrics(findings)
    assert served["shanakht_integrity_failed_checks_total"] == 1.0
    assert served["shanakht_integrity_checked_timestamp_seconds"] == 1.0
    assert caplog.messages == ["the integrity check could not run: OperationalError"]


def test_a_check_that_fails_on_a_bug_is_counted_with_its_traceback(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    findings = Findings(0.0)
    monkeypatch.setattr(integrity_watch, "check_integrity", _raising(KeyError("details")))
    with caplog.at_level(logging.ERROR, "shanakht.integrity"):
        check_once(runtime, findings)
    assert findings.failed_runs == 1
    assert findings.completed_at is None
    (record,) = caplog.records
    assert record.getMessage() == "the integrity check failed"
    assert record.exc_info is not None, "a bug is logged with where it happened"


def test_a_check_on_a_schema_the_code_does_not_read_is_not_run(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An upgrade ran while an old release's watcher runs: counted, said, and nothing read
    (it would read new columns as tampering)."""
    findings = Findings(0.0)
    monkeypatch.setattr(integrity_watch, "check_integrity", _raising(AssertionError("read")))
    with caplog.at_level(logging.ERROR, "shanakht.integrity"):
        set_back(runtime, "0027")
        check_once(runtime, findings)
    assert findings.failed_runs == 1
    assert caplog.messages[0].startswith("the integrity check did not run: the schema is at 0027")
