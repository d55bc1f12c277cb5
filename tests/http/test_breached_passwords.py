"""A new password found in the breached-password mirror is refused on every page that sets
one, and while the mirror cannot answer no password is set at all (503, nothing written)."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.runtime import Runtime, StartupError, open_runtime
from api.settings import Settings
from identity.breached import CANNOT_CHECK, PwnedPasswordsMirror
from identity.enrolment import BREACHED
from identity.models import citizens
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from tests.http.oidc_kit import PASSWORD, csrf_of
from tests.http.test_password_pages import _change, _new_password_page
from tests.unit.identity.test_breached import write_mirror

LEAKED = "Tr0ub4dor&3-leaked"  # meets the policy: only the mirror knows it leaked


@pytest.fixture
def record(oidc_runtime: Runtime) -> CitizenRecord:
    return read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["two_mobiles"]]


@pytest.fixture
def mirror(oidc_runtime: Runtime, tmp_path: Path) -> Path:
    folder = write_mirror(tmp_path / "pwned", {LEAKED: 12}, unseen=[PASSWORD])
    oidc_runtime.identity.breached = PwnedPasswordsMirror(folder)
    return folder


def _accounts(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return int(session.execute(select(func.count()).select_from(citizens)).scalar_one())


def _set(web: TestClient, page: str, password: str) -> tuple[int, str]:
    answer = web.post(
        "/register/password", data={"csrf": csrf_of(page), "password": password},
        follow_redirects=False,
    )  # fmt: skip
    return answer.status_code, html.unescape(answer.text)


def test_registration_refuses_a_breached_password_and_takes_another(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord, mirror: Path
) -> None:
    page = _new_password_page(web, oidc_runtime, record, "register")
    status, text = _set(web, page, LEAKED)
    assert (status, BREACHED in text) == (422, True)
    assert _accounts(oidc_runtime) == 0
    status, text = _set(web, page, PASSWORD)
    assert status == 200
    assert "Your password is set" in text
    assert _accounts(oidc_runtime) == 1


def test_an_incomplete_mirror_sets_no_password_and_says_try_later(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord, mirror: Path
) -> None:
    page = _new_password_page(web, oidc_runtime, record, "register")
    for range_file in mirror.glob("*.txt"):
        if range_file.name not in ("00000.txt", "FFFFF.txt"):
            range_file.unlink()
    status, text = _set(web, page, PASSWORD)
    assert (status, CANNOT_CHECK in text) == (503, True)
    assert _accounts(oidc_runtime) == 0


def test_a_signed_in_citizen_cannot_change_to_a_breached_password(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord, mirror: Path
) -> None:
    page = _change(web, oidc_runtime, record)
    answer = web.post(
        "/account/password",
        data={"csrf": csrf_of(page), "current": PASSWORD, "password": LEAKED, "confirm": LEAKED},
        follow_redirects=False,
    )
    assert answer.status_code == 422
    assert BREACHED in html.unescape(answer.text)
    login = web.get("/login")
    again = web.post(
        "/login",
        data={"csrf": csrf_of(login.text), "cnic": record.cnic, "password": PASSWORD},
        follow_redirects=False,
    )
    assert again.status_code == 303, "the old password still works: nothing was changed"


def test_the_service_will_not_start_on_a_folder_that_is_not_a_mirror(
    settings: Settings, tmp_path: Path
) -> None:
    empty = tmp_path / "not-a-mirror"
    empty.mkdir()
    with pytest.raises(StartupError, match=r"SHANAKHT_BREACHED_PASSWORDS_DIR: .*no 00000\.txt"):
        open_runtime(settings.model_copy(update={"breached_passwords_dir": empty}))
