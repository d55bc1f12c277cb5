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


def test_before_any_check_completes_only_the_failure_count_is_served() -> None:
    assert _metrics(Findings()) == {"shanakht_integrity_failed_checks_total": 0.0}


def test_a_log_that_fails_verification_is_served_as_such(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    findings = Findings(completed_at=1.0, log_verified=True, log_entries=10, differ=3)
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
    findings = Findings(completed_at=1.0, log_verified=True)
    down = OperationalError("SELECT 1", {}, Exception("could not connect to db.internal:5432"))
    monkeypatch.setattr(integrity_watch, "check_integrity", _raising(down))
    with caplog.at_level(logging.ERROR, "shanakht.integrity"):
        check_once(runtime, findings, clock=lambda: 50.0)
    served = _metrics(findings)
    assert served["shanakht_integrity_failed_checks_total"] == 1.0
    assert served["shanakht_integrity_checked_timestamp_seconds"] == 1.0
    assert caplog.messages == ["the integrity check could not run: OperationalError"]
