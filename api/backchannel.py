"""Ending sessions and telling the e-services: logout tokens built in the transaction,
delivered after it commits (an e-service must never hear of a logout that rolled back)."""

from __future__ import annotations

from fastapi import BackgroundTasks, Response

from api.runtime import Runtime
from identity.oidc.logout import LogoutNotice
from identity.oidc.provider import Provider
from identity.oidc.sessions import EndedSession


def deliver(runtime: Runtime, notices: list[LogoutNotice]) -> None:
    """Back-channel logout, after the commit: each e-service hears once, failures are logged."""
    for notice in notices:
        runtime.identity.notifier.deliver(notice)


def end_sessions(
    runtime: Runtime, provider: Provider, ended: list[EndedSession], reason: str
) -> list[LogoutNotice]:
    notices: list[LogoutNotice] = []
    for one in ended:
        account = provider.accounts.by_id(one.citizen_id)
        subject = account.pseudonym if account else "unknown"
        notices += provider.logout.notices(one, subject=subject, reason=reason)
    return notices


def deliver_after(response: Response, runtime: Runtime, notices: list[LogoutNotice]) -> Response:
    """Attach delivery of `notices` to `response`, to run once it has been sent."""
    if notices:
        tasks = response.background if isinstance(response.background, BackgroundTasks) else None
        tasks = tasks or BackgroundTasks()
        tasks.add_task(deliver, runtime, notices)
        response.background = tasks
    return response
