"""Background jobs in the database (`locker.jobs`): a job marked interrupted, and perhaps taken
over by another replica's run, is never revived or rewritten by the runner it was taken from."""

from __future__ import annotations

from datetime import timedelta

from api.runtime import Runtime
from locker import jobs


def _started(runtime: Runtime) -> str:
    with runtime.transaction() as session:
        job = jobs.create(
            session, "rewrap", starter="citizen:p:x", now=runtime.clock(), one_at_a_time=True
        )
        assert job is not None
        return job.id


def test_a_taken_over_job_tells_its_runner_to_stop_and_keeps_its_record(runtime: Runtime) -> None:
    first = _started(runtime)
    with runtime.transaction() as session:
        assert jobs.beat(session, first, runtime.clock()), "a running job beats"
        assert jobs.progress(session, first, runtime.clock(), done=2, total=9) == jobs.RUNNING
        before = jobs.get(session, first)
        assert before is not None
    later = runtime.clock() + jobs.STALE + timedelta(seconds=1)
    with runtime.transaction() as session:
        second = jobs.create(
            session, "rewrap", starter="citizen:p:y", now=later, one_at_a_time=True
        )
        assert second is not None
    with runtime.transaction() as session:
        assert not jobs.beat(session, first, later)
        assert jobs.progress(session, first, later, done=3) == jobs.INTERRUPTED
        jobs.finish(session, first, later, jobs.DONE, done=9)
    with runtime.transaction() as session:
        taken = jobs.get(session, first)
        assert taken is not None
        assert (taken.state, taken.done, taken.beat_at) == (jobs.INTERRUPTED, 2, before.beat_at)
        running = jobs.get(session, second.id)
        assert running is not None
        assert running.state == jobs.RUNNING


def test_an_ended_job_is_not_revived_by_a_late_beat(runtime: Runtime) -> None:
    job_id = _started(runtime)
    with runtime.transaction() as session:
        jobs.finish(session, job_id, runtime.clock(), jobs.STOPPED)
    with runtime.transaction() as session:
        assert not jobs.beat(session, job_id, runtime.clock())
        jobs.finish(session, job_id, runtime.clock(), jobs.DONE)
        ended = jobs.get(session, job_id)
        assert ended is not None
        assert ended.state == jobs.STOPPED
