from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from identity.cnic import PROVINCES, normalise_cnic
from identity.errors import InvalidCnic, InvalidMobile, RegistryUnavailable
from identity.nadra import (
    REFERENCE_DATE,
    SCENARIOS,
    Address,
    CardDetails,
    CardStatus,
    CitizenRecord,
    Gender,
    MockNadra,
    NadraRegistry,
    Outcome,
    Verification,
    ensure_registry,
    generate_registry,
    read_registry,
    synthetic,
    write_registry,
)
from identity.phone import normalise_mobile

TODAY = REFERENCE_DATE


class FakeSleep:
    """Records how long the registry would have slept, and never sleeps."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def registry_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nadra") / "registry.jsonl"
    write_registry(path)
    return path


@pytest.fixture(scope="module")
def records(registry_path: Path) -> dict[str, CitizenRecord]:
    return read_registry(registry_path)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def nadra(records: dict[str, CitizenRecord], sleep: FakeSleep) -> MockNadra:
    return MockNadra(records, today=lambda: TODAY, sleep=sleep)


def details_of(record: CitizenRecord, **changes: object) -> CardDetails:
    return dataclasses.replace(record.card(), **changes)


def scenario(records: dict[str, CitizenRecord], name: str) -> CitizenRecord:
    return records[SCENARIOS[name]]


# The synthetic registry


def test_same_seed_and_count_give_the_same_bytes(registry_path: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    write_registry(again)
    assert again.read_bytes() == registry_path.read_bytes()


def test_another_seed_gives_another_registry_with_the_same_scenarios(tmp_path: Path) -> None:
    write_registry(tmp_path / "a.jsonl", count=500, seed=1)
    write_registry(tmp_path / "b.jsonl", count=500, seed=2)
    a = (tmp_path / "a.jsonl").read_text().splitlines()
    b = (tmp_path / "b.jsonl").read_text().splitlines()
    assert len(a) == len(b) == 500
    assert a != b
    assert a[: len(SCENARIOS)] == b[: len(SCENARIOS)]


def test_file_is_json_lines_with_sorted_keys_and_iso_dates(registry_path: Path) -> None:
    lines = registry_path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "every record ends with a newline"
    for line in lines[:50]:
        data = json.loads(line)
        assert list(data) == sorted(data)
        assert list(data["address"]) == sorted(data["address"])
        for key in ("date_of_birth", "card_issue_date", "card_expiry_date"):
            assert date.fromisoformat(data[key]).isoformat() == data[key]


def test_read_gives_back_what_was_generated(records: dict[str, CitizenRecord]) -> None:
    assert list(records.values()) == list(generate_registry())


def test_a_rewritten_registry_is_read_anew_at_once(tmp_path: Path) -> None:
    """The parsed records are cached by the file's content, not its modification time: a
    rewrite within the clock's tick is read as rewritten, and the dict a caller gets is its own
    to change."""
    path = tmp_path / "registry.jsonl"
    write_registry(path, count=3)
    first = read_registry(path)
    cnic, record = next(iter(first.items()))
    assert record.status is CardStatus.ACTIVE
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace('"status": "active"', '"status": "expired"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    del first[cnic]
    again = read_registry(path)
    assert again[cnic].status is CardStatus.EXPIRED
    assert len(again) == 3


def test_at_least_ten_thousand_records_with_unique_cnics(
    registry_path: Path, records: dict[str, CitizenRecord]
) -> None:
    lines = registry_path.read_text().splitlines()
    assert len(lines) == len(records) >= 10_000
    assert len({json.loads(line)["cnic"] for line in lines}) == len(lines)
    assert all(cnic == record.cnic for cnic, record in records.items())


def test_count_is_exact_and_scenarios_come_first() -> None:
    assert [r.cnic for r in generate_registry(3)] == list(SCENARIOS.values())[:3]
    assert list(generate_registry(0)) == []
    assert len(list(generate_registry(1234, seed=7))) == 1234
    first = [r.cnic for r in generate_registry(len(SCENARIOS) + 5, seed=99)]
    assert first[: len(SCENARIOS)] == list(SCENARIOS.values())


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        generate_registry(-1)


def test_every_cnic_is_valid_and_agrees_with_gender_and_province(
    records: dict[str, CitizenRecord],
) -> None:
    for record in records.values():
        assert normalise_cnic(record.cnic) == record.cnic
        assert PROVINCES[record.cnic[0]] == record.address.province
        last = int(record.cnic[-1])
        if record.gender is Gender.MALE:
            assert last % 2 == 1, record.cnic
        elif record.gender is Gender.FEMALE:
            assert last % 2 == 0, record.cnic


def test_known_district_prefixes_are_used(records: dict[str, CitizenRecord]) -> None:
    prefixes = {(r.cnic[:5], r.address.district) for r in records.values()}
    for known in [
        ("35202", "Lahore"),
        ("37405", "Rawalpindi"),
        ("33100", "Faisalabad"),
        ("36302", "Multan"),
        ("34101", "Gujranwala"),
        ("42101", "Karachi"),
        ("42201", "Karachi"),
        ("42301", "Karachi"),
        ("17301", "Peshawar"),
        ("54400", "Quetta"),
        ("61101", "Islamabad"),
    ]:
        assert known in prefixes
    by_prefix: dict[str, set[str]] = {}
    for prefix, district in prefixes:
        by_prefix.setdefault(prefix, set()).add(district)
    assert all(len(districts) == 1 for districts in by_prefix.values())


def test_mostly_punjab_and_every_province_present(records: dict[str, CitizenRecord]) -> None:
    provinces = Counter(r.cnic[0] for r in records.values())
    assert set(provinces) == set(PROVINCES)
    assert 0.65 < provinces["3"] / len(records) < 0.75


def test_genders_and_statuses_in_realistic_shares(records: dict[str, CitizenRecord]) -> None:
    n = len(records)
    genders = Counter(r.gender for r in records.values())
    assert 0.45 < genders[Gender.MALE] / n < 0.55
    assert 0.45 < genders[Gender.FEMALE] / n < 0.55
    assert 1 <= genders[Gender.TRANSGENDER] <= 0.005 * n
    statuses = Counter(r.status for r in records.values())
    assert set(statuses) == set(CardStatus)
    assert 0.92 < statuses[CardStatus.ACTIVE] / n < 0.96
    assert 0.02 < statuses[CardStatus.EXPIRED] / n < 0.04
    assert 0.01 < statuses[CardStatus.CANCELLED] / n < 0.03
    assert 0.005 < statuses[CardStatus.DECEASED] / n < 0.015


def test_card_dates_hold_together(records: dict[str, CitizenRecord]) -> None:
    for r in records.values():
        assert date(1945, 1, 1) <= r.date_of_birth <= date(2008, 1, 1)
        eighteen = synthetic._add_years(r.date_of_birth, 18)
        assert eighteen <= REFERENCE_DATE, "every holder is an adult at the reference date"
        assert eighteen <= r.card_issue_date <= REFERENCE_DATE, "issued to an adult"
        assert r.card_expiry_date == synthetic._add_years(r.card_issue_date, 10)
        if r.status is CardStatus.EXPIRED:
            assert r.card_expiry_date < REFERENCE_DATE
        else:
            assert r.card_expiry_date >= REFERENCE_DATE


def test_leap_day_cards_expire_on_the_28th() -> None:
    assert synthetic._add_years(date(2024, 2, 29), 10) == date(2034, 2, 28)
    assert synthetic._add_years(date(2024, 2, 29), -4) == date(2020, 2, 29)


def test_mobile_numbers_are_e164_mostly_one_or_two_and_rarely_shared(
    records: dict[str, CitizenRecord],
) -> None:
    n = len(records)
    counts = Counter(len(r.mobile_numbers) for r in records.values())
    assert 0.02 < counts[0] / n < 0.04
    assert (counts[1] + counts[2]) / n > 0.9
    holders = Counter(m for r in records.values() for m in r.mobile_numbers)
    assert all(normalise_mobile(m) == m for m in holders)
    shared = [m for m, k in holders.items() if k > 1]
    assert shared, "some family members share a SIM"
    assert len(shared) < 0.03 * len(holders)
    assert max(holders.values()) == 2
    for r in records.values():
        assert len(set(r.mobile_numbers)) == len(r.mobile_numbers)


def test_shared_numbers_stay_within_a_family(records: dict[str, CitizenRecord]) -> None:
    holders: dict[str, list[CitizenRecord]] = {}
    for r in records.values():
        for m in r.mobile_numbers:
            holders.setdefault(m, []).append(r)
    pairs = [h for h in holders.values() if len(h) == 2]
    assert pairs
    for a, b in pairs:
        assert a.address == b.address
        assert b.father_or_husband_name == a.full_name or a.father_or_husband_name == b.full_name


def test_names_are_varied(records: dict[str, CitizenRecord]) -> None:
    assert len(set(synthetic.MALE_NAMES)) >= 60
    assert len(set(synthetic.FEMALE_NAMES)) >= 60
    assert len(set(synthetic.FAMILY_NAMES)) >= 60
    assert not set(synthetic.MALE_NAMES) & set(synthetic.FEMALE_NAMES)
    women = [r for r in records.values() if r.gender is Gender.FEMALE]
    men = [r for r in records.values() if r.gender is Gender.MALE]
    assert len({r.full_name.split()[0] for r in women}) >= 60
    assert len({r.full_name.split()[0] for r in men}) >= 60
    assert len({r.full_name for r in records.values()}) > 0.5 * len(records)


def test_married_women_name_their_husbands(records: dict[str, CitizenRecord]) -> None:
    men_at = {(r.full_name, r.address): r for r in records.values() if r.gender is Gender.MALE}
    women = [r for r in records.values() if r.gender is Gender.FEMALE]
    wives = [
        r
        for r in women
        if (husband := men_at.get((r.father_or_husband_name, r.address))) is not None
        and abs(husband.date_of_birth - r.date_of_birth) < timedelta(days=11 * 366)
    ]
    assert 0.3 * len(women) < len(wives) < 0.8 * len(women)


def test_scenarios_are_lahore_cards_that_behave_as_named(
    records: dict[str, CitizenRecord],
) -> None:
    assert set(SCENARIOS) >= {
        "active_male",
        "active_female",
        "expired_card",
        "cancelled_card",
        "deceased",
        "no_mobile",
        "two_mobiles",
    }
    for cnic in SCENARIOS.values():
        record = records[cnic]
        assert cnic.startswith("35202")
        assert record.address.district == "Lahore"
        assert record.address.province == "Punjab"
    assert scenario(records, "active_male").gender is Gender.MALE
    assert scenario(records, "active_male").status is CardStatus.ACTIVE
    assert scenario(records, "active_female").gender is Gender.FEMALE
    assert scenario(records, "active_female").status is CardStatus.ACTIVE
    assert scenario(records, "expired_card").status is CardStatus.EXPIRED
    assert scenario(records, "expired_card").card_expiry_date < REFERENCE_DATE
    assert scenario(records, "cancelled_card").status is CardStatus.CANCELLED
    assert scenario(records, "deceased").status is CardStatus.DECEASED
    assert scenario(records, "no_mobile").mobile_numbers == ()
    assert scenario(records, "no_mobile").status is CardStatus.ACTIVE
    assert len(scenario(records, "two_mobiles").mobile_numbers) == 2
    assert scenario(records, "two_mobiles").status is CardStatus.ACTIVE
    for name in ("active_male", "active_female"):
        assert len(scenario(records, name).mobile_numbers) == 1


def test_write_never_leaves_a_half_written_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.jsonl"
    write_registry(path, count=20)
    before = path.read_bytes()

    def broken(count: int, seed: int) -> Iterator[CitizenRecord]:
        yield from generate_registry(5, seed)
        raise OSError("disk full")

    monkeypatch.setattr(synthetic, "generate_registry", broken)
    with pytest.raises(OSError, match="disk full"):
        write_registry(path, count=20)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["registry.jsonl"]


def test_ensure_writes_a_missing_registry_and_keeps_an_existing_one(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "registry.jsonl"
    assert ensure_registry(path, count=30) == path
    assert len(read_registry(path)) == 30
    path.write_text("")
    assert ensure_registry(path) == path
    assert path.read_text() == ""


def test_ensure_defaults_to_the_standard_registry(registry_path: Path, tmp_path: Path) -> None:
    path = ensure_registry(tmp_path / "registry.jsonl")
    assert path.read_bytes() == registry_path.read_bytes()


def test_read_refuses_a_repeated_cnic(tmp_path: Path) -> None:
    path = tmp_path / "registry.jsonl"
    write_registry(path, count=3)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1]]))
    with pytest.raises(ValueError, match="line 4"):
        read_registry(path)


# Verification


def test_mock_is_a_nadra_registry(nadra: MockNadra) -> None:
    assert isinstance(nadra, NadraRegistry)


@pytest.mark.parametrize("name", ["active_male", "active_female", "no_mobile", "two_mobiles"])
def test_matching_details_verify_and_return_the_record(
    nadra: MockNadra, records: dict[str, CitizenRecord], name: str
) -> None:
    record = scenario(records, name)
    assert nadra.verify(details_of(record)) == Verification(Outcome.MATCH, record=record)


def test_names_compare_ignoring_case_and_spacing(
    nadra: MockNadra, records: dict[str, CitizenRecord]
) -> None:
    record = scenario(records, "active_male")  # Ahmed Raza, son of Muhammad Aslam
    typed = details_of(
        record, full_name="  ahmed   RAZA ", father_or_husband_name="MUHAMMAD\taslam"
    )
    assert nadra.verify(typed).outcome is Outcome.MATCH


@pytest.mark.parametrize(
    ("full_name", "father"),
    [
        ("Ahmad Raza", "Muhammad Aslam"),  # a different spelling is a different name
        ("Ahmed Raza.", "Muhammad Aslam"),
        ("AhmedRaza", "Muhammad Aslam"),
        ("Ahmed Raza", "Mohammad Aslam"),
        ("Ahmed Raza", "Muhammad Aslam Khan"),
    ],
)
def test_nothing_fuzzier_than_case_and_spacing_matches(
    nadra: MockNadra, records: dict[str, CitizenRecord], full_name: str, father: str
) -> None:
    record = scenario(records, "active_male")
    typed = details_of(record, full_name=full_name, father_or_husband_name=father)
    assert nadra.verify(typed).outcome is Outcome.MISMATCH


@pytest.mark.parametrize(
    "changes",
    [
        {"full_name": "Bilal Raza"},
        {"father_or_husband_name": "Muhammad Akram"},
        {"date_of_birth": date(1985, 3, 15)},
        {"card_issue_date": date(2012, 5, 10)},
        {"full_name": "Bilal Raza", "date_of_birth": date(1985, 4, 14)},
        {
            "full_name": "Bilal Raza",
            "father_or_husband_name": "Muhammad Akram",
            "date_of_birth": date(1984, 3, 14),
            "card_issue_date": date(2022, 5, 11),
        },
    ],
)
def test_a_mismatch_names_exactly_the_differing_fields(
    nadra: MockNadra, records: dict[str, CitizenRecord], changes: dict[str, object]
) -> None:
    record = scenario(records, "active_male")
    verification = nadra.verify(details_of(record, **changes))
    assert verification.outcome is Outcome.MISMATCH
    assert set(verification.mismatched_fields) == set(changes)
    assert len(verification.mismatched_fields) == len(changes)
    assert verification.record is None
    assert verification.card_status is None


def test_an_unknown_cnic_is_not_found(nadra: MockNadra, records: dict[str, CitizenRecord]) -> None:
    unknown = "3520299999991"
    assert unknown not in records
    typed = details_of(scenario(records, "active_male"), cnic=unknown)
    assert nadra.verify(typed) == Verification(Outcome.NOT_FOUND)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("expired_card", CardStatus.EXPIRED),
        ("cancelled_card", CardStatus.CANCELLED),
        ("deceased", CardStatus.DECEASED),
    ],
)
def test_a_card_that_is_not_active_is_not_valid(
    nadra: MockNadra, records: dict[str, CitizenRecord], name: str, status: CardStatus
) -> None:
    record = scenario(records, name)
    expected = Verification(Outcome.CARD_NOT_VALID, card_status=status)
    assert nadra.verify(details_of(record)) == expected
    assert nadra.verify(details_of(record, full_name="Someone Else")) == expected


def test_an_active_card_past_its_expiry_date_counts_as_expired(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    record = scenario(records, "active_male")
    clock = {"today": record.card_expiry_date}
    nadra = MockNadra(records, today=lambda: clock["today"], sleep=sleep)
    assert nadra.verify(details_of(record)).outcome is Outcome.MATCH, "valid on its last day"
    clock["today"] = record.card_expiry_date + timedelta(days=1)
    assert nadra.verify(details_of(record)) == Verification(
        Outcome.CARD_NOT_VALID, card_status=CardStatus.EXPIRED
    )


def test_every_synthetic_active_card_verifies(
    nadra: MockNadra, records: dict[str, CitizenRecord]
) -> None:
    outcomes = Counter(nadra.verify(details_of(r)).outcome for r in records.values())
    active = sum(1 for r in records.values() if r.status is CardStatus.ACTIVE)
    assert outcomes == {
        Outcome.MATCH: active,
        Outcome.CARD_NOT_VALID: len(records) - active,
    }


@pytest.mark.parametrize("raw", ["35202-1000001-1", " 3520210000011", "3520210000011\n", "x"])
def test_a_cnic_that_is_not_normalised_is_refused_before_any_call(
    records: dict[str, CitizenRecord], sleep: FakeSleep, raw: str
) -> None:
    nadra = MockNadra(records, today=lambda: TODAY, latency=0.5, outage=True, sleep=sleep)
    typed = details_of(scenario(records, "active_male"), cnic=raw)
    with pytest.raises(InvalidCnic):
        nadra.verify(typed)
    with pytest.raises(InvalidCnic):
        nadra.mobile_registered(raw, "+923001000001")
    assert sleep.calls == []


def test_the_clock_is_only_read_through_the_injected_today(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    reads: list[date] = []

    def today() -> date:
        reads.append(TODAY)
        return TODAY

    nadra = MockNadra(records, today=today, sleep=sleep)
    nadra.verify(details_of(scenario(records, "active_male")))
    assert reads == [TODAY]


def test_verification_logs_no_personal_data(
    nadra: MockNadra, records: dict[str, CitizenRecord], caplog: pytest.LogCaptureFixture
) -> None:
    record = scenario(records, "active_male")
    with caplog.at_level(logging.DEBUG, logger="identity.nadra"):
        nadra.verify(details_of(record))
        nadra.verify(details_of(record, full_name="Bilal Raza"))
        nadra.mobile_registered(record.cnic, record.mobile_numbers[0])
    assert "match" in caplog.text
    assert "full_name" in caplog.text
    for secret in (
        record.cnic,
        record.full_name,
        "Bilal",
        record.father_or_husband_name,
        record.date_of_birth.isoformat(),
        record.mobile_numbers[0],
    ):
        assert secret not in caplog.text


# The telco SIM check


def test_mobile_registered_to_its_cnic(nadra: MockNadra, records: dict[str, CitizenRecord]) -> None:
    two = scenario(records, "two_mobiles")
    assert all(nadra.mobile_registered(two.cnic, m) for m in two.mobile_numbers)
    male = scenario(records, "active_male")
    assert nadra.mobile_registered(male.cnic, male.mobile_numbers[0])
    assert not nadra.mobile_registered(male.cnic, two.mobile_numbers[0])
    assert not nadra.mobile_registered(two.cnic, male.mobile_numbers[0])
    none = scenario(records, "no_mobile")
    assert not any(nadra.mobile_registered(none.cnic, m) for m in male.mobile_numbers)
    assert not nadra.mobile_registered("3520299999991", male.mobile_numbers[0])


def test_a_shared_number_is_registered_to_both_holders(
    nadra: MockNadra, records: dict[str, CitizenRecord]
) -> None:
    holders: dict[str, list[str]] = {}
    for r in records.values():
        for m in r.mobile_numbers:
            holders.setdefault(m, []).append(r.cnic)
    number, cnics = next((m, c) for m, c in holders.items() if len(c) == 2)
    assert all(nadra.mobile_registered(cnic, number) for cnic in cnics)


@pytest.mark.parametrize("mobile", ["03001000001", "0300-1000001", "+92 300 1000001", "12345"])
def test_a_mobile_that_is_not_e164_is_refused_before_any_call(
    records: dict[str, CitizenRecord], sleep: FakeSleep, mobile: str
) -> None:
    nadra = MockNadra(records, today=lambda: TODAY, latency=0.5, sleep=sleep)
    with pytest.raises(InvalidMobile):
        nadra.mobile_registered(SCENARIOS["active_male"], mobile)
    assert sleep.calls == []


# Latency and failures


def _both_calls(records: dict[str, CitizenRecord]) -> list[Callable[[MockNadra], object]]:
    record = scenario(records, "active_male")
    return [
        lambda nadra: nadra.verify(details_of(record)),
        lambda nadra: nadra.mobile_registered(record.cnic, record.mobile_numbers[0]),
    ]


def test_latency_is_slept_and_the_call_then_answers(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    nadra = MockNadra(records, today=lambda: TODAY, latency=0.3, timeout=2.0, sleep=sleep)
    for call in _both_calls(records):
        assert call(nadra)
    assert sleep.calls == [0.3, 0.3]


def test_latency_equal_to_the_timeout_still_answers(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    nadra = MockNadra(records, today=lambda: TODAY, latency=2.0, timeout=2.0, sleep=sleep)
    assert nadra.verify(details_of(scenario(records, "active_male"))).outcome is Outcome.MATCH
    assert sleep.calls == [2.0]


def test_no_latency_means_no_sleep(nadra: MockNadra, sleep: FakeSleep) -> None:
    nadra.mobile_registered(SCENARIOS["active_male"], "+923001000001")
    assert sleep.calls == []


def test_latency_beyond_the_timeout_waits_the_timeout_and_fails(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    nadra = MockNadra(records, today=lambda: TODAY, latency=5.0, timeout=1.5, sleep=sleep)
    for call in _both_calls(records):
        with pytest.raises(RegistryUnavailable):
            call(nadra)
    assert sleep.calls == [1.5, 1.5]


def test_an_outage_fails_every_call_at_once_until_it_ends(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    nadra = MockNadra(records, today=lambda: TODAY, latency=0.1, outage=True, sleep=sleep)
    for call in _both_calls(records):
        with pytest.raises(RegistryUnavailable):
            call(nadra)
    assert sleep.calls == []
    nadra.outage = False
    for call in _both_calls(records):
        assert call(nadra)


def test_failure_rate_one_fails_every_call(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    nadra = MockNadra(records, today=lambda: TODAY, failure_rate=1.0, sleep=sleep)
    for call in _both_calls(records) * 10:
        with pytest.raises(RegistryUnavailable):
            call(nadra)


def _failures(nadra: MockNadra, record: CitizenRecord, calls: int) -> list[bool]:
    failed = []
    for _ in range(calls):
        try:
            nadra.verify(details_of(record))
        except RegistryUnavailable:
            failed.append(True)
        else:
            failed.append(False)
    return failed


def test_failure_rate_fails_that_share_of_calls_reproducibly(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    record = scenario(records, "active_female")

    def make(seed: int) -> MockNadra:
        return MockNadra(records, today=lambda: TODAY, failure_rate=0.3, seed=seed, sleep=sleep)

    first = _failures(make(7), record, 2000)
    assert 0.25 < sum(first) / len(first) < 0.35
    assert _failures(make(7), record, 2000) == first
    assert _failures(make(8), record, 2000) != first
    never = MockNadra(records, today=lambda: TODAY, failure_rate=0.0, seed=7, sleep=sleep)
    assert not any(_failures(never, record, 500))


def test_failure_rate_is_shared_safely_between_threads(
    records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    record = scenario(records, "active_male")
    threads, each = 8, 250
    alone = MockNadra(records, today=lambda: TODAY, failure_rate=0.5, seed=11, sleep=sleep)
    expected = sum(_failures(alone, record, threads * each))
    shared = MockNadra(records, today=lambda: TODAY, failure_rate=0.5, seed=11, sleep=sleep)
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        count = sum(_failures(shared, record, each))
        with lock:
            results.append(count)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(results) == threads
    assert sum(results) == expected, "every draw of the seeded stream is used exactly once"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("latency", -0.1),
        ("latency", float("nan")),
        ("latency", float("inf")),
        ("timeout", 0.0),
        ("timeout", -1.0),
        ("timeout", float("nan")),
        ("timeout", float("inf")),
        ("failure_rate", -0.01),
        ("failure_rate", 1.01),
        ("failure_rate", float("nan")),
    ],
)
def test_invalid_options_are_refused(
    records: dict[str, CitizenRecord], option: str, value: float
) -> None:
    with pytest.raises(ValueError, match=option):
        MockNadra(records, today=lambda: TODAY, **{option: value})


def test_from_file_reads_the_registry_and_takes_the_options(
    registry_path: Path, records: dict[str, CitizenRecord], sleep: FakeSleep
) -> None:
    nadra = MockNadra.from_file(registry_path, today=lambda: TODAY, latency=0.2, sleep=sleep)
    record = scenario(records, "active_female")
    assert nadra.verify(details_of(record)) == Verification(Outcome.MATCH, record=record)
    assert sleep.calls == [0.2]
    with pytest.raises(ValueError, match="failure_rate"):
        MockNadra.from_file(registry_path, today=lambda: TODAY, failure_rate=2.0)


def test_a_hand_made_registry_works_too(sleep: FakeSleep) -> None:
    record = CitizenRecord(
        cnic="6110112345672",
        full_name="Hira Abbasi",
        father_or_husband_name="Kamran Abbasi",
        date_of_birth=date(1999, 2, 28),
        gender=Gender.FEMALE,
        address=Address("House 1, Street 1, G-9/4", "Islamabad", "Islamabad", PROVINCES["6"]),
        card_issue_date=date(2020, 3, 1),
        card_expiry_date=date(2030, 3, 1),
        status=CardStatus.ACTIVE,
        mobile_numbers=("+923111234567",),
    )
    nadra = MockNadra({record.cnic: record}, today=lambda: date(2030, 3, 2), sleep=sleep)
    assert nadra.verify(details_of(record)).card_status is CardStatus.EXPIRED
    assert nadra.mobile_registered(record.cnic, "+923111234567")
