"""A synthetic NADRA registry: realistic enough to exercise the service, owned by nobody real.

The registry is generated from a seed rather than kept in the repository, so it can be as large
as a load test wants and never holds anyone's data. Generation is a pure function of the seed,
the count and a fixed reference date (not today's date), so the same arguments always give a
byte-identical file and a failing test can be replayed.

CNICs start with real district prefixes where they are known and plausible ones (the right
province and division digits) elsewhere; the last digit follows the card's rule, odd for men and
even for women. People come in households: a wife's card names her husband, adult children
name their father, and now and then two of them share a SIM.

The first records are fixed by hand and named in SCENARIOS, so tests and demos can rely on an
active card, an expired one, a cancelled one and so on, whatever the seed.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from identity.cnic import PROVINCES
from identity.nadra.protocol import Address, CardStatus, CitizenRecord, Gender

REFERENCE_DATE = date(2026, 1, 1)
"""The generation's "today": every card holder is 18 by then, active cards are valid on it."""

EARLIEST_BIRTH = date(1945, 1, 1)
LATEST_BIRTH = date(2008, 1, 1)
CARD_YEARS = 10
DEFAULT_COUNT = 10_000
DEFAULT_SEED = 2021

MALE_NAMES = (
    "Muhammad", "Ahmed", "Ali", "Hassan", "Hussain", "Usman", "Umar", "Bilal", "Hamza", "Imran",
    "Kamran", "Faisal", "Asif", "Tariq", "Khalid", "Zubair", "Shahid", "Naveed", "Sajid",
    "Waseem", "Nadeem", "Irfan", "Adnan", "Fahad", "Saad", "Zeeshan", "Rizwan", "Salman",
    "Junaid", "Arslan", "Haris", "Danish", "Owais", "Yasir", "Asad", "Raza", "Aslam", "Akram",
    "Anwar", "Javed", "Pervaiz", "Rashid", "Saleem", "Shakeel", "Zahid", "Abdullah", "Iqbal",
    "Nasir", "Ejaz", "Mushtaq", "Rafiq", "Shafiq", "Sohail", "Waqas", "Ayaz", "Babar", "Farhan",
    "Mudassar", "Qasim", "Talha", "Zain", "Ibrahim", "Yousaf", "Idrees", "Latif", "Jahangir",
    "Aurangzeb", "Mumtaz", "Ghulam Rasool", "Allah Ditta", "Noor Muhammad", "Sher Ali",
    "Abdul Rehman", "Abdul Hameed",
)  # fmt: skip

FEMALE_NAMES = (
    "Ayesha", "Fatima", "Zainab", "Maryam", "Khadija", "Amna", "Sana", "Hina", "Saima", "Nadia",
    "Rabia", "Sadia", "Asma", "Bushra", "Farah", "Nazia", "Samina", "Shazia", "Uzma", "Rubina",
    "Shabana", "Nasreen", "Parveen", "Kausar", "Razia", "Shamim", "Naseem", "Zubaida",
    "Rukhsana", "Tahira", "Farzana", "Kiran", "Mehwish", "Sidra", "Iqra", "Aqsa", "Anum", "Hira",
    "Mahnoor", "Laiba", "Areeba", "Noor", "Sobia", "Sumaira", "Afshan", "Yasmin", "Zahida",
    "Naila", "Aliya", "Huma", "Fouzia", "Ghazala", "Lubna", "Mehreen", "Sehrish", "Saba",
    "Tayyaba", "Javeria", "Bisma", "Esha", "Kulsoom", "Sughra", "Hajra", "Rida", "Fiza",
)  # fmt: skip

# A wife is often called after her husband's given name, never after "Muhammad" or half of a
# compound name.
_SIMPLE_MALE_NAMES = frozenset(n for n in MALE_NAMES if " " not in n) - {"Muhammad"}

# Second names women often carry in place of a family name.
_FEMALE_SECOND_NAMES = (
    "Bibi", "Begum", "Akhtar", "Kausar", "Noor", "Sultana", "Parveen", "Jabeen", "Naz",
    "Batool", "Zahra", "Shaheen",
)  # fmt: skip

_COMMON_FAMILY_NAMES = (
    "Khan", "Sheikh", "Qureshi", "Siddiqui", "Ansari", "Hashmi", "Shah", "Naqvi", "Rizvi",
    "Zaidi", "Baig", "Mirza", "Abbasi", "Bukhari", "Gilani", "Kazmi", "Jafri", "Mughal",
)  # fmt: skip

# Family names by the CNIC's province digit: most people carry one common where they live.
_REGIONAL_FAMILY_NAMES: dict[str, tuple[str, ...]] = {
    "1": ("Khattak", "Afridi", "Yousafzai", "Durrani", "Marwat", "Bangash", "Orakzai", "Swati",
          "Tanoli", "Jadoon", "Mohmand", "Shinwari", "Gandapur", "Kundi"),
    "2": ("Afridi", "Wazir", "Mehsud", "Mohmand", "Shinwari", "Orakzai", "Turi", "Bangash"),
    "3": ("Butt", "Malik", "Chaudhry", "Awan", "Rajput", "Gondal", "Cheema", "Bajwa", "Warraich",
          "Virk", "Sandhu", "Gill", "Arain", "Jutt", "Bhatti", "Khokhar", "Tarar", "Ranjha",
          "Tiwana", "Noon", "Janjua", "Sial", "Dasti", "Khosa", "Leghari", "Mazari", "Dogar"),
    "4": ("Soomro", "Bhutto", "Talpur", "Junejo", "Memon", "Chandio", "Jatoi", "Mahar", "Abro",
          "Shaikh", "Unar", "Samo"),
    "5": ("Mengal", "Bugti", "Marri", "Raisani", "Baloch", "Jamali", "Magsi", "Rind", "Zehri",
          "Kakar", "Achakzai", "Tareen"),
    "6": ("Abbasi", "Satti", "Janjua", "Kayani", "Awan", "Malik", "Chaudhry", "Raja"),
    "7": ("Baig", "Shah", "Hunzai", "Khan", "Balti", "Tajik"),
    "8": ("Sudhan", "Rathore", "Mir", "Dar", "Lone", "Raja", "Abbasi", "Kayani"),
}  # fmt: skip

FAMILY_NAMES = tuple(sorted(set(_COMMON_FAMILY_NAMES).union(*_REGIONAL_FAMILY_NAMES.values())))

_GENERIC_LOCALITIES = (
    "Mohalla Islampura", "Mohalla Rehmanpura", "Gulshan Colony", "Madina Town", "Farooq Abad",
    "Ghausia Colony", "Satellite Town", "Civil Lines", "Model Town", "Muslim Town",
    "Allama Iqbal Colony", "Jinnah Colony", "Mohalla Qadirabad", "Usmanabad",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _District:
    name: str
    city: str
    prefixes: tuple[str, ...]
    weight: float
    localities: tuple[str, ...] = _GENERIC_LOCALITIES

    @property
    def province(self) -> str:
        return PROVINCES[self.prefixes[0][0]]


# The first digit is the province, the second the division, the third the district; Punjab's
# districts are numbered alphabetically within each division. Weights are percentages of all
# card holders: Punjab 70, Sindh 14, Khyber Pakhtunkhwa 8, Balochistan 3, AJK 1.5,
# Islamabad 2, former FATA 1, Gilgit-Baltistan 0.5.
_DISTRICTS = (
    _District("Lahore", "Lahore", ("35202", "35201"), 14.0, (
        "Model Town", "Gulberg III", "Johar Town", "Allama Iqbal Town", "Samanabad", "Shadman",
        "Township", "Wapda Town", "Shahdara", "Garden Town", "Faisal Town", "Mughalpura",
    )),
    _District("Faisalabad", "Faisalabad", ("33100", "33102"), 8.0, (
        "Peoples Colony", "Madina Town", "Gulberg", "Jinnah Colony", "Samanabad",
        "Ghulam Muhammad Abad",
    )),
    _District("Rawalpindi", "Rawalpindi", ("37405", "37406"), 6.0, (
        "Satellite Town", "Saddar", "Westridge", "Chaklala Scheme III", "Dhok Kashmirian",
        "Raja Bazar",
    )),
    _District("Gujranwala", "Gujranwala", ("34101", "34104"), 5.0, (
        "Satellite Town", "Model Town", "Peoples Colony", "Khiali", "Rahwali",
    )),
    _District("Multan", "Multan", ("36302", "36303"), 5.0, (
        "Shah Rukn-e-Alam Colony", "Gulgasht Colony", "Mumtazabad", "New Multan", "Bosan Road",
    )),
    _District("Sialkot", "Sialkot", ("34603",), 3.5),
    _District("Sargodha", "Sargodha", ("38403",), 3.0),
    _District("Bahawalpur", "Bahawalpur", ("31202",), 3.0),
    _District("Sheikhupura", "Sheikhupura", ("35404",), 3.0),
    _District("Rahim Yar Khan", "Rahim Yar Khan", ("31303",), 3.0),
    _District("Kasur", "Kasur", ("35102",), 2.5),
    _District("Okara", "Okara", ("35302",), 2.5),
    _District("Sahiwal", "Sahiwal", ("36502",), 2.0),
    _District("Jhang", "Jhang", ("33202",), 2.0),
    _District("Dera Ghazi Khan", "Dera Ghazi Khan", ("32102",), 2.0),
    _District("Gujrat", "Gujrat", ("34201",), 2.0),
    _District("Jhelum", "Jhelum", ("37301",), 1.5),
    _District("Attock", "Attock", ("37101",), 1.5),
    _District("Karachi", "Karachi", ("42101", "42201", "42301", "42401", "42501"), 10.0, (
        "Gulshan-e-Iqbal", "Nazimabad", "North Nazimabad", "Korangi", "Clifton", "Malir",
        "Orangi Town", "Lyari", "Gulistan-e-Johar", "Federal B Area", "Landhi", "Saddar",
    )),
    _District("Hyderabad", "Hyderabad", ("41303", "41304"), 2.5, (
        "Latifabad", "Qasimabad", "Hirabad", "Saddar", "Paretabad",
    )),
    _District("Sukkur", "Sukkur", ("45504",), 1.0),
    _District("Larkana", "Larkana", ("43203",), 0.5),
    _District("Peshawar", "Peshawar", ("17301",), 4.0, (
        "Hayatabad", "University Town", "Gulbahar", "Saddar", "Board Bazar", "Faqirabad",
    )),
    _District("Mardan", "Mardan", ("16101",), 1.5),
    _District("Abbottabad", "Abbottabad", ("13101",), 1.0),
    _District("Swat", "Mingora", ("15602",), 1.0),
    _District("Kohat", "Kohat", ("14301",), 0.5),
    _District("Khyber", "Landi Kotal", ("21401",), 0.6),
    _District("Bajaur", "Khar", ("21102",), 0.4),
    _District("Quetta", "Quetta", ("54400", "54401"), 2.4, (
        "Satellite Town", "Jinnah Town", "Samungli Road", "Brewery Road", "Sariab Road",
    )),
    _District("Khuzdar", "Khuzdar", ("53201",), 0.6),
    _District("Islamabad", "Islamabad", ("61101",), 2.0, (
        "G-9/4", "G-10/2", "F-8/3", "I-8/1", "G-11/3", "F-10/4", "Bhara Kahu",
    )),
    _District("Gilgit", "Gilgit", ("71501",), 0.5, ("Jutial", "Kashrote", "Danyore")),
    _District("Mirpur", "Mirpur", ("81302",), 0.8),
    _District("Muzaffarabad", "Muzaffarabad", ("82203",), 0.7),
)  # fmt: skip
_DISTRICT_WEIGHTS = tuple(d.weight for d in _DISTRICTS)

_HOUSEHOLDS = ("single", "couple", "family")
_HOUSEHOLD_WEIGHTS = (55, 30, 15)
_STATUSES = (CardStatus.ACTIVE, CardStatus.EXPIRED, CardStatus.CANCELLED, CardStatus.DECEASED)
_STATUS_WEIGHTS = (94, 3, 2, 1)
_MOBILE_COUNTS = (0, 1, 2, 3)
_MOBILE_COUNT_WEIGHTS = (3, 64, 30, 3)
_SPOUSE_SHARES_SIM = 0.03
_CHILD_SHARES_SIM = 0.02
_TRANSGENDER_SINGLE = 0.003


def _add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _lahore(line: str) -> Address:
    return Address(line, "Lahore", "Lahore", "Punjab")


def _record(
    cnic: str,
    name: str,
    relation: str,
    born: date,
    gender: Gender,
    line: str,
    issued: date,
    status: CardStatus,
    mobiles: tuple[str, ...],
) -> CitizenRecord:
    return CitizenRecord(
        cnic=cnic,
        full_name=name,
        father_or_husband_name=relation,
        date_of_birth=born,
        gender=gender,
        address=_lahore(line),
        card_issue_date=issued,
        card_expiry_date=_add_years(issued, CARD_YEARS),
        status=status,
        mobile_numbers=mobiles,
    )


_M, _F = Gender.MALE, Gender.FEMALE
_SCENARIO_RECORDS = (
    ("active_male", _record(
        "3520210000011", "Ahmed Raza", "Muhammad Aslam", date(1985, 3, 14), _M,
        "House 12, Street 4, Model Town", date(2022, 5, 10), CardStatus.ACTIVE,
        ("+923001000001",),
    )),
    ("active_female", _record(
        "3520210000022", "Fatima Bilal", "Bilal Hussain", date(1990, 7, 2), _F,
        "House 45, Street 9, Johar Town", date(2021, 9, 15), CardStatus.ACTIVE,
        ("+923211000002",),
    )),
    ("expired_card", _record(
        "3520210000033", "Tariq Mehmood", "Ghulam Rasool", date(1960, 11, 20), _M,
        "House 7, Street 2, Samanabad", date(2014, 2, 3), CardStatus.EXPIRED,
        ("+923331000003",),
    )),
    ("cancelled_card", _record(
        "3520210000044", "Nasreen Akhtar", "Abdul Hameed", date(1975, 1, 28), _F,
        "House 88, Street 11, Township", date(2019, 6, 21), CardStatus.CANCELLED,
        ("+923451000004",),
    )),
    ("deceased", _record(
        "3520210000055", "Muhammad Yousaf", "Allah Ditta", date(1947, 8, 30), _M,
        "House 3, Street 1, Shadman", date(2017, 4, 12), CardStatus.DECEASED,
        ("+923011000005",),
    )),
    ("no_mobile", _record(
        "3520210000066", "Zainab Noor", "Noor Muhammad", date(2001, 12, 5), _F,
        "House 19, Street 6, Wapda Town", date(2020, 1, 8), CardStatus.ACTIVE,
        (),
    )),
    ("two_mobiles", _record(
        "3520210000077", "Usman Tariq", "Tariq Mehmood", date(1988, 5, 17), _M,
        "House 7, Street 2, Samanabad", date(2023, 3, 1), CardStatus.ACTIVE,
        ("+923001000007", "+923121000007"),
    )),
)  # fmt: skip

SCENARIOS: dict[str, str] = {name: record.cnic for name, record in _SCENARIO_RECORDS}
"""Readable names for the hand-made records at the start of every generated registry."""


def _between(rng: random.Random, lo: date, hi: date) -> date:
    return lo + timedelta(days=rng.randint(0, (hi - lo).days))


class _Generator:
    """One generation run: the random stream plus what it has handed out so far."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311  reproducible on purpose, not secret
        self.cnics: set[str] = set(SCENARIOS.values())
        self.mobiles: set[str] = {m for _, r in _SCENARIO_RECORDS for m in r.mobile_numbers}
        self.shared: set[str] = set()
        self.owed_expired = 0

    def households(self) -> Iterator[CitizenRecord]:
        rng = self.rng
        while True:
            district = rng.choices(_DISTRICTS, _DISTRICT_WEIGHTS)[0]
            kind = rng.choices(_HOUSEHOLDS, _HOUSEHOLD_WEIGHTS)[0]
            if kind == "single":
                yield from self._single(district)
            else:
                yield from self._couple(district, with_children=kind == "family")

    def _single(self, district: _District) -> Iterator[CitizenRecord]:
        rng = self.rng
        family = self._family_name(district)
        born = self._adult_birth(EARLIEST_BIRTH, LATEST_BIRTH)
        draw = rng.random()
        if draw < _TRANSGENDER_SINGLE:
            gender = Gender.TRANSGENDER
            name = self._given(rng.choice((MALE_NAMES, FEMALE_NAMES)), family)
        elif draw < 0.5:
            gender = Gender.MALE
            name = self._male_name(family)
        else:
            gender = Gender.FEMALE
            name = self._female_name(family, husband=None)
        relation = self._male_name(family)
        if gender is Gender.FEMALE and rng.random() < _married_share(born):
            husband_family = self._family_name(district)
            relation = self._male_name(husband_family)
        yield self._person(district, self._address(district), name, relation, born, gender)

    def _couple(self, district: _District, *, with_children: bool) -> Iterator[CitizenRecord]:
        """A married couple at one address and, for a family, one or two grown-up children
        still living at home, who are unmarried and so name their father."""
        rng = self.rng
        family = self._family_name(district)
        address = self._address(district)
        latest = date(1982, 1, 1) if with_children else LATEST_BIRTH
        husband_born = self._adult_birth(EARLIEST_BIRTH, latest)
        wife_born = min(husband_born + timedelta(days=rng.randint(0, 10 * 365)), latest)
        husband_name = self._male_name(family)
        husband = self._person(
            district, address, husband_name, self._male_name(family), husband_born, Gender.MALE
        )
        yield husband
        wife = self._person(
            district,
            address,
            self._female_name(self._family_name(district), husband=husband_name),
            husband_name,
            wife_born,
            Gender.FEMALE,
            share_from=husband if rng.random() < _SPOUSE_SHARES_SIM else None,
        )
        yield wife
        if not with_children:
            return
        eldest = _add_years(wife_born, 18)
        for _ in range(rng.randint(1, 2)):
            if eldest > LATEST_BIRTH:
                return
            born = _between(rng, eldest, LATEST_BIRTH)
            share = husband if rng.random() < _CHILD_SHARES_SIM else None
            if rng.random() < 0.5:
                name = self._male_name(family)
                yield self._person(district, address, name, husband_name, born, Gender.MALE, share)
                continue
            name = self._female_name(family, husband=None)
            yield self._person(district, address, name, husband_name, born, Gender.FEMALE, share)

    def _person(
        self,
        district: _District,
        address: Address,
        name: str,
        relation: str,
        born: date,
        gender: Gender,
        share_from: CitizenRecord | None = None,
    ) -> CitizenRecord:
        status = self._status(born)
        issued = self._issue_date(born, status)
        return CitizenRecord(
            cnic=self._cnic(district, gender),
            full_name=name,
            father_or_husband_name=relation,
            date_of_birth=born,
            gender=gender,
            address=address,
            card_issue_date=issued,
            card_expiry_date=_add_years(issued, CARD_YEARS),
            status=status,
            mobile_numbers=self._mobiles(share_from),
        )

    def _status(self, born: date) -> CardStatus:
        """Draw a status; an expired card is owed to the next old-enough holder when this one
        is too young to have had a card expire, so the shares stay as intended."""
        can_expire = _add_years(born, 18 + CARD_YEARS) < REFERENCE_DATE
        if not can_expire:
            status = self.rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]
            if status is CardStatus.EXPIRED:
                self.owed_expired += 1
                return CardStatus.ACTIVE
            return status
        if self.owed_expired:
            self.owed_expired -= 1
            return CardStatus.EXPIRED
        return self.rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]

    def _issue_date(self, born: date, status: CardStatus) -> date:
        adult = _add_years(born, 18)
        if status is CardStatus.EXPIRED:
            lo = max(adult, _add_years(REFERENCE_DATE, -2 * CARD_YEARS))
            hi = _add_years(REFERENCE_DATE, -CARD_YEARS) - timedelta(days=1)
        else:
            lo = max(adult, _add_years(REFERENCE_DATE, -CARD_YEARS) + timedelta(days=1))
            hi = REFERENCE_DATE
        return _between(self.rng, lo, hi)

    def _cnic(self, district: _District, gender: Gender) -> str:
        rng = self.rng
        digits = {Gender.MALE: "13579", Gender.FEMALE: "02468"}.get(gender, "0123456789")
        while True:
            cnic = (
                rng.choice(district.prefixes)
                + f"{rng.randint(1, 9_999_999):07d}"
                + rng.choice(digits)
            )
            if cnic not in self.cnics:
                self.cnics.add(cnic)
                return cnic

    def _mobiles(self, share_from: CitizenRecord | None) -> tuple[str, ...]:
        rng = self.rng
        count = rng.choices(_MOBILE_COUNTS, _MOBILE_COUNT_WEIGHTS)[0]
        numbers: list[str] = []
        if share_from is not None and count:
            free = [m for m in share_from.mobile_numbers if m not in self.shared]
            if free:
                number = rng.choice(free)
                self.shared.add(number)
                numbers.append(number)
        while len(numbers) < count:
            number = f"+92{rng.randint(300, 349)}{rng.randint(0, 9_999_999):07d}"
            if number not in self.mobiles:
                self.mobiles.add(number)
                numbers.append(number)
        return tuple(numbers)

    def _adult_birth(self, lo: date, hi: date) -> date:
        """Skewed young, as Pakistan's adult population is."""
        span = (hi - lo).days
        return lo + timedelta(days=round(self.rng.triangular(0, span, span * 0.8)))

    def _family_name(self, district: _District) -> str:
        if self.rng.random() < 0.7:
            return self.rng.choice(_REGIONAL_FAMILY_NAMES[district.prefixes[0][0]])
        return self.rng.choice(_COMMON_FAMILY_NAMES)

    def _given(self, names: tuple[str, ...], family: str) -> str:
        return f"{self.rng.choice(names)} {family}"

    def _male_name(self, family: str) -> str:
        rng = self.rng
        first = rng.choice(MALE_NAMES)
        draw = rng.random()
        if draw < 0.6:
            return f"{first} {family}"
        if draw < 0.8 and first != "Muhammad" and " " not in first:
            return f"Muhammad {first}"
        second = rng.choice(MALE_NAMES)
        return f"{first} {second}" if second != first else f"{first} {family}"

    def _female_name(self, family: str, *, husband: str | None) -> str:
        rng = self.rng
        first = rng.choice(FEMALE_NAMES)
        draw = rng.random()
        called_after = (
            [word for word in husband.split() if word in _SIMPLE_MALE_NAMES] if husband else []
        )
        if called_after and draw < 0.25:
            return f"{first} {called_after[0]}"
        if draw < 0.6:
            return f"{first} {family}"
        second = rng.choice(_FEMALE_SECOND_NAMES)
        return f"{first} {second}" if second != first else f"{first} {family}"

    def _address(self, district: _District) -> Address:
        rng = self.rng
        locality = rng.choice(district.localities)
        line = f"House {rng.randint(1, 999)}, Street {rng.randint(1, 40)}, {locality}"
        return Address(line, district.city, district.name, district.province)


def _married_share(born: date) -> float:
    age = REFERENCE_DATE.year - born.year
    if age >= 30:
        return 0.9
    if age >= 25:
        return 0.7
    if age >= 22:
        return 0.4
    return 0.15


def generate_registry(
    count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED
) -> Iterator[CitizenRecord]:
    """`count` records with unique CNICs: the SCENARIOS first, then households drawn from
    `seed`. A pure function of its arguments."""
    if count < 0:
        raise ValueError("a registry cannot hold a negative number of records")
    return _records(count, seed)


def _records(count: int, seed: int) -> Iterator[CitizenRecord]:
    fixed = [record for _, record in _SCENARIO_RECORDS][:count]
    yield from fixed
    remaining = count - len(fixed)
    if remaining <= 0:
        return
    for record in _Generator(seed).households():
        yield record
        remaining -= 1
        if not remaining:
            return


def to_json(record: CitizenRecord) -> dict[str, Any]:
    a = record.address
    return {
        "cnic": record.cnic,
        "full_name": record.full_name,
        "father_or_husband_name": record.father_or_husband_name,
        "date_of_birth": record.date_of_birth.isoformat(),
        "gender": record.gender.value,
        "address": {"line": a.line, "city": a.city, "district": a.district, "province": a.province},
        "card_issue_date": record.card_issue_date.isoformat(),
        "card_expiry_date": record.card_expiry_date.isoformat(),
        "status": record.status.value,
        "mobile_numbers": list(record.mobile_numbers),
    }


def from_json(data: dict[str, Any]) -> CitizenRecord:
    return CitizenRecord(
        cnic=data["cnic"],
        full_name=data["full_name"],
        father_or_husband_name=data["father_or_husband_name"],
        date_of_birth=date.fromisoformat(data["date_of_birth"]),
        gender=Gender(data["gender"]),
        address=Address(**data["address"]),
        card_issue_date=date.fromisoformat(data["card_issue_date"]),
        card_expiry_date=date.fromisoformat(data["card_expiry_date"]),
        status=CardStatus(data["status"]),
        mobile_numbers=tuple(data["mobile_numbers"]),
    )


def write_registry(path: Path, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> None:
    """Write the registry as JSON Lines, keys sorted, so equal arguments give equal bytes.

    The file appears whole or not at all: it is written beside its destination and renamed
    over it, so a reader, or a crash half-way, never leaves a truncated registry in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.writelines(
                json.dumps(to_json(record), sort_keys=True, ensure_ascii=False) + "\n"
                for record in generate_registry(count, seed)
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_registry(path: Path) -> dict[str, CitizenRecord]:
    """The registry file keyed by CNIC; a CNIC that appears twice makes the file invalid.

    Parsing the default 10,000 records takes a third of a second, and every server process,
    every test that signs a citizen in and every benchmark's set-up reads the same file again
    and again. So a file's records are parsed once per content (the cache is keyed by the bytes
    themselves, which a rewrite within the clock's tick cannot fool as a modification time
    can); each caller gets a dict of its own over the shared, frozen records."""
    return dict(_parsed(Path(path).read_bytes()))


@lru_cache(maxsize=2)
def _parsed(content: bytes) -> Mapping[str, CitizenRecord]:
    records: dict[str, CitizenRecord] = {}
    for number, line in enumerate(content.decode("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        record = from_json(json.loads(line))
        if record.cnic in records:
            raise ValueError(f"line {number} repeats a CNIC already in the registry")
        records[record.cnic] = record
    return MappingProxyType(records)


def ensure_registry(path: Path, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> Path:
    """`path`, after writing the registry there if nothing is there yet; an existing file is
    left alone, whatever it was generated from."""
    path = Path(path)
    if not path.exists():
        write_registry(path, count, seed)
    return path
