"""Fixtures the command-line tests share."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from api.migrate import prepare
from api.runtime import Runtime
from identity.nadra import SCENARIOS, ensure_registry, read_registry
from tests.http.oidc_kit import register_citizen


@pytest.fixture
def people(runtime: Runtime) -> tuple[str, str]:
    """Citizen A, with an authenticator app; and a registration under way (a challenge)."""
    prepare(runtime)
    registry = read_registry(ensure_registry(runtime.identity.nadra_file))
    citizen = register_citizen(runtime, registry[SCENARIOS["active_female"]])
    with runtime.transaction() as session:
        apps = runtime.second_factor(session).apps
        secret, _uri = apps.begin(citizen, "A")
        earlier = runtime.clock() - timedelta(seconds=30)  # the test's own code is the next
        assert apps.confirm(citizen, pyotp.TOTP(secret).at(earlier)) is not None
    waiting = registry[SCENARIOS["active_male"]]
    with runtime.transaction() as session:
        enrolment = runtime.enrolment(session)
        enrolment.start_registration(waiting.card(), waiting.mobile_numbers[0], client="test")
    return citizen, secret
