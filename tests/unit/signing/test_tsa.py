"""The time-stamp authority judged from outside: `openssl ts` makes requests, reads and verifies
the replies; pyHanko stamps a PAdES signature through it over HTTP and validates its tokens;
and every refusal RFC 3161 names is checked, with openssl reading the failure back."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import subprocess
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus

from signing.documents import sign_pdf, validate_pdf
from signing.documents.cms import validation_context
from signing.documents.pades import http_timestamper
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER, TSA
from signing.tsa import DEFAULT_POLICY, TimeStampAuthority, TimeStampResp, random_serial, request
from tests.unit.signing.pki_kit import NOW, Hierarchy, openssl, pem
from tests.unit.signing.tsa_server import serving

DATA = b"Transfer order 2024/117, School Education Department\n"
CLOCK_TIME = NOW.replace(microsecond=654321)
GEN_TIME = CLOCK_TIME.replace(microsecond=654000)  # truncated to the millisecond
LATER = NOW + timedelta(minutes=10)


@dataclass(frozen=True)
class Setup:
    pki: Hierarchy
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def authority(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        serials: Callable[[], int] | None = None,
        policy: str = DEFAULT_POLICY,
    ) -> TimeStampAuthority:
        return TimeStampAuthority(
            self.key,
            self.certificate,
            [self.pki.issuing],
            clock=clock or (lambda: datetime.now(UTC)),
            serials=serials or random_serial,
            policy=policy,
        )


@pytest.fixture(scope="module")
def setup() -> Setup:
    pki = Hierarchy.make()
    key = ec.generate_private_key(ec.SECP256R1())
    return Setup(pki, key, pki.issue(TSA, "Punjab Time-Stamp Authority", key=key))


@pytest.fixture(scope="module")
def tsa(setup: Setup) -> TimeStampAuthority:
    return setup.authority()


def ts(*args: str | Path) -> str:
    """`openssl ts` with `args`; its stdout and stderr together, whatever its exit status."""
    result = subprocess.run(
        [openssl(), "ts", *map(str, args)], capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr


def openssl_query(tmp_path: Path, *options: str) -> bytes:
    data = tmp_path / "data.txt"
    data.write_bytes(DATA)
    query = tmp_path / "req.tsq"
    subprocess.run(
        [openssl(), "ts", "-query", "-data", str(data), *options, "-out", str(query)],
        check=True,
        capture_output=True,
    )
    return query.read_bytes()


def reply_text(tmp_path: Path, response: bytes) -> str:
    path = tmp_path / "resp.tsr"
    path.write_bytes(response)
    return ts("-reply", "-in", path, "-text")


def openssl_verify(tmp_path: Path, setup: Setup, response: bytes, *how: str | Path) -> str:
    """openssl's verdict on `response`, trusting only the root; the issuing CA and the TSA's
    certificate are offered as untrusted, for tokens that do not carry them."""
    path = tmp_path / "resp.tsr"
    path.write_bytes(response)
    return ts(
        "-verify",
        *how,
        "-in",
        path,
        "-CAfile",
        pem(tmp_path / "root.pem", setup.pki.root),
        "-untrusted",
        pem(tmp_path / "untrusted.pem", setup.pki.issuing, setup.certificate),
    )


def parsed(response: bytes) -> TimeStampResp:
    """The response, its status parsed (asn1crypto is lazy: `.native` on all of it would parse
    every certificate, at some 40 ms a response; one test does that, the rest read fields)."""
    loaded: TimeStampResp = TimeStampResp.load(response, strict=True)
    loaded["status"].native  # noqa: B018 -- parses the status now, so a bad one fails here
    return loaded


def refusal(response: bytes) -> tuple[str, set[str]]:
    answer = parsed(response)
    assert answer["time_stamp_token"].native is None
    status = answer["status"]
    return status["status"].native, set(status["fail_info"].native or ())


def token(response: bytes) -> cms.SignedData:
    answer = parsed(response)
    assert answer["status"]["status"].native == "granted"
    return answer["time_stamp_token"]["content"]


def tst_info(response: bytes) -> tsp.TSTInfo:
    return token(response)["encap_content_info"]["content"].parsed


def a_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Transfer order 2024/117")
    return bytes(pdf.output())


def fixed_clock(value: datetime) -> Callable[[], datetime]:
    return lambda: value


# openssl as the client and the judge.


def test_an_openssl_request_is_granted_and_verifies(
    tmp_path: Path, setup: Setup, tsa: TimeStampAuthority
) -> None:
    query = openssl_query(tmp_path, "-sha256", "-cert")
    response = tsa.respond(query)
    text = reply_text(tmp_path, response)
    assert "Status: Granted." in text, text
    assert f"Policy OID: {DEFAULT_POLICY}" in text, text
    assert "Accuracy: 0x01 seconds" in text, text
    assert "Ordering: no" in text, text
    assert "CN=Punjab Time-Stamp Authority" in text, text
    nonce = tsp.TimeStampReq.load(query)["nonce"].native
    assert nonce is not None
    echoed = re.search(r"Nonce: 0x([0-9A-F]+)", text)
    assert echoed is not None, text
    assert int(echoed.group(1), 16) == nonce
    data = tmp_path / "data.txt"
    assert "Verification: OK" in openssl_verify(tmp_path, setup, response, "-data", data)
    # against the query: the imprint, and the nonce echoed
    query_file = tmp_path / "req.tsq"
    assert "Verification: OK" in openssl_verify(tmp_path, setup, response, "-queryfile", query_file)


def test_without_nonce_or_cert_request_the_token_still_verifies(
    tmp_path: Path, setup: Setup, tsa: TimeStampAuthority
) -> None:
    response = tsa.respond(openssl_query(tmp_path, "-sha256", "-no_nonce"))
    text = reply_text(tmp_path, response)
    assert "Status: Granted." in text, text
    assert "Nonce: unspecified" in text, text
    assert token(response)["certificates"].native is None  # RFC 3161 2.4.1: certReq absent
    verdict = openssl_verify(tmp_path, setup, response, "-data", tmp_path / "data.txt")
    assert "Verification: OK" in verdict, verdict


@pytest.mark.parametrize("digest", ["sha384", "sha512"])
def test_longer_sha2_imprints_are_granted(
    tmp_path: Path, setup: Setup, tsa: TimeStampAuthority, digest: str
) -> None:
    response = tsa.respond(openssl_query(tmp_path, f"-{digest}", "-cert"))
    verdict = openssl_verify(tmp_path, setup, response, "-data", tmp_path / "data.txt")
    assert "Verification: OK" in verdict, verdict
    assert tst_info(response)["message_imprint"]["hash_algorithm"]["algorithm"].native == digest


def test_altered_data_does_not_verify(
    tmp_path: Path, setup: Setup, tsa: TimeStampAuthority
) -> None:
    response = tsa.respond(openssl_query(tmp_path, "-sha256", "-cert"))
    other = tmp_path / "other.txt"
    other.write_bytes(DATA + b" ")
    verdict = openssl_verify(tmp_path, setup, response, "-data", other)
    assert "Verification: FAILED" in verdict, verdict


def test_a_token_from_another_hierarchy_does_not_verify(tmp_path: Path, setup: Setup) -> None:
    other = Hierarchy.make()
    key = ec.generate_private_key(ec.SECP256R1())
    stranger = TimeStampAuthority(key, other.issue(TSA, "Rogue TSA", key=key), [other.issuing])
    response = stranger.respond(openssl_query(tmp_path, "-sha256", "-cert"))
    verdict = openssl_verify(tmp_path, setup, response, "-data", tmp_path / "data.txt")
    assert "Verification: FAILED" in verdict, verdict


# The token's contents.


def test_tst_info_carries_what_rfc_3161_asks(setup: Setup) -> None:
    tsa = setup.authority(clock=fixed_clock(CLOCK_TIME), serials=lambda: 4242)
    query = request(DATA, nonce=True)
    response = tsa.respond(query)
    info = tst_info(response)
    assert info["version"].native == "v1"
    assert info["policy"].dotted == DEFAULT_POLICY
    assert info["message_imprint"].dump() == tsp.TimeStampReq.load(query)["message_imprint"].dump()
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(DATA).digest()
    assert info["serial_number"].native == 4242
    assert info["gen_time"].native == GEN_TIME
    assert info["accuracy"].native == {"seconds": 1, "millis": None, "micros": None}
    assert info["ordering"].native is False
    assert info["nonce"].native == tsp.TimeStampReq.load(query)["nonce"].native
    assert info["tsa"].name == "directory_name"
    assert info["tsa"].chosen.untag().dump() == setup.certificate.subject.public_bytes()
    assert info["extensions"].native is None
    # DER: re-encoding changes nothing, so ordering's default FALSE is not written out
    tst_der = bytes(token(response)["encap_content_info"]["content"])
    assert tsp.TSTInfo.load(tst_der).dump(force=True) == tst_der
    whole = parsed(response)
    whole.native  # noqa: B018 -- every field parses
    assert whole.dump(force=True) == response


@pytest.mark.parametrize(
    ("microsecond", "fraction"),
    [(654321, b".654"), (100999, b".1"), (120000, b".12"), (999, b"")],
)
def test_gen_time_is_truncated_to_the_millisecond_in_der_form(
    tmp_path: Path, setup: Setup, microsecond: int, fraction: bytes
) -> None:
    """DER's GeneralizedTime (X.690 11.7): a fraction only if non-zero, no trailing zeros."""
    clock_time = NOW.replace(microsecond=microsecond)
    response = setup.authority(clock=fixed_clock(clock_time)).respond(request(DATA))
    expected = clock_time.strftime("%Y%m%d%H%M%S").encode() + fraction + b"Z"
    assert tst_info(response)["gen_time"].contents == expected
    text = reply_text(tmp_path, response)
    assert f"Time stamp: {clock_time:%b %e %H:%M:%S}{fraction.decode()} {NOW.year} GMT" in text


def test_a_ber_encoded_imprint_is_echoed_as_der(tsa: TimeStampAuthority) -> None:
    """BER in (a non-minimal length), DER out: the token must stay DER all the way down."""
    digest = hashlib.sha256(DATA).digest()
    algorithm = bytes.fromhex("300d06096086480165030402010500")  # sha256, NULL parameters
    imprint = algorithm + b"\x04\x81\x20" + digest  # 0x81 0x20: 32 in the long form
    body = b"\x02\x01\x01" + b"\x30" + bytes([len(imprint)]) + imprint
    response = tsa.respond(b"\x30" + bytes([len(body)]) + body)
    echoed = tst_info(response)["message_imprint"]
    assert echoed.dump() == b"\x30\x31" + algorithm + b"\x04\x20" + digest
    tst_der = bytes(token(response)["encap_content_info"]["content"])
    assert tsp.TSTInfo.load(tst_der).dump(force=True) == tst_der


def test_the_signature_is_ecdsa_sha256_with_an_ess_certid_v2(
    setup: Setup, tsa: TimeStampAuthority
) -> None:
    signed_data = token(tsa.respond(request(DATA)))
    assert signed_data["version"].native == "v3"
    assert signed_data["encap_content_info"]["content_type"].native == "tst_info"
    (info,) = signed_data["signer_infos"]
    assert info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    attributes = {a["type"].native: a["values"][0] for a in info["signed_attrs"]}
    assert set(attributes) == {"content_type", "message_digest", "signing_certificate_v2"}
    tst_der = bytes(signed_data["encap_content_info"]["content"])
    assert attributes["message_digest"].native == hashlib.sha256(tst_der).digest()
    (cert_id,) = attributes["signing_certificate_v2"]["certs"]
    der = setup.certificate.public_bytes(serialization.Encoding.DER)
    assert cert_id["cert_hash"].native == hashlib.sha256(der).digest()
    assert cert_id["issuer_serial"]["serial_number"].native == setup.certificate.serial_number
    (issuer,) = cert_id["issuer_serial"]["issuer"]
    assert issuer.chosen.untag().dump() == setup.certificate.issuer.public_bytes()
    # the signature is over the attributes as a DER SET, with the TSA's key
    public = setup.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        info["signature"].native,
        info["signed_attrs"].untag().dump(force=True),
        ec.ECDSA(hashes.SHA256()),
    )
    carried = {c.chosen.dump() for c in signed_data["certificates"]}
    assert carried == {
        c.public_bytes(serialization.Encoding.DER) for c in (setup.certificate, setup.pki.issuing)
    }


def test_serial_numbers_are_unique_positive_and_128_bits(tsa: TimeStampAuthority) -> None:
    query = request(DATA, cert_req=False)  # parsing the certificates back is most of the time
    serials = [tst_info(tsa.respond(query))["serial_number"].native for _ in range(500)]
    assert len(set(serials)) == len(serials)
    assert all(s.bit_length() == 128 for s in serials)


@pytest.mark.parametrize("serial", [0, -1, 1 << 160])
def test_an_unusable_serial_source_is_a_bug_not_a_refusal(setup: Setup, serial: int) -> None:
    tsa = setup.authority(serials=lambda: serial)
    with pytest.raises(ValueError, match="serial number"):
        tsa.respond(request(DATA))


def test_a_reqpolicy_naming_ours_is_granted(tsa: TimeStampAuthority) -> None:
    info = tst_info(tsa.respond(request(DATA, policy=DEFAULT_POLICY)))
    assert info["policy"].dotted == DEFAULT_POLICY


def test_a_policy_of_its_own_is_used(setup: Setup) -> None:
    policy = f"{DEFAULT_POLICY}.9"
    tsa = setup.authority(policy=policy)
    assert tst_info(tsa.respond(request(DATA, policy=policy)))["policy"].dotted == policy


# Refusals, each read back by openssl.


def test_a_sha1_imprint_is_refused_as_bad_alg(tmp_path: Path, tsa: TimeStampAuthority) -> None:
    response = tsa.respond(openssl_query(tmp_path, "-sha1", "-cert"))
    assert refusal(response) == ("rejection", {"bad_alg"})
    text = reply_text(tmp_path, response)
    assert "Status: Rejected." in text, text
    assert "unrecognized or unsupported algorithm identifier" in text, text


@pytest.mark.parametrize("algorithm", ["md5", "sha224", "sha3_256", "sha512_256"])
def test_other_imprint_hashes_are_refused_as_bad_alg(
    tsa: TimeStampAuthority, algorithm: str
) -> None:
    digest = hashlib.new(algorithm, DATA)
    query = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": algorithm},
                "hashed_message": digest.digest(),
            },
        }
    ).dump()
    assert refusal(tsa.respond(query)) == ("rejection", {"bad_alg"})


def _query(**changes: object) -> bytes:
    fields: dict[str, object] = dict(tsp.TimeStampReq.load(request(DATA)).native)
    fields.update(changes)
    der: bytes = tsp.TimeStampReq(fields).dump()
    return der


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"garbage",
        b"\x30\x00",
        b"\x30\x80\x00\x00",
        request(DATA)[:-1],
        request(DATA) + b"\x00",
        b"\x30\x84\xff\xff\xff\xff",
        b"\x04\x03abc",
        b"\x30" * 100_000,
    ],
    ids=[
        "empty",
        "text",
        "empty-sequence",
        "indefinite-length",
        "truncated",
        "trailing-byte",
        "huge-length",
        "octet-string",
        "oversized",
    ],
)
def test_malformed_der_is_refused_as_bad_data_format(
    tmp_path: Path, tsa: TimeStampAuthority, garbage: bytes
) -> None:
    response = tsa.respond(garbage)
    assert refusal(response) == ("rejection", {"bad_data_format"})
    text = reply_text(tmp_path, response)
    assert "the data submitted has the wrong format" in text, text


def test_an_imprint_of_the_wrong_length_is_bad_data_format(tsa: TimeStampAuthority) -> None:
    query = _query(
        message_imprint={"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\1" * 20}
    )
    assert refusal(tsa.respond(query)) == ("rejection", {"bad_data_format"})


def test_a_foreign_reqpolicy_is_refused_as_unaccepted_policy(
    tmp_path: Path, tsa: TimeStampAuthority
) -> None:
    response = tsa.respond(openssl_query(tmp_path, "-sha256", "-tspolicy", "1.2.3.4.5"))
    assert refusal(response) == ("rejection", {"unaccepted_policy"})
    text = reply_text(tmp_path, response)
    assert "the requested TSA policy is not supported by the TSA" in text, text


def test_any_request_extension_is_refused(tsa: TimeStampAuthority) -> None:
    extension = {"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}
    query = _query(extensions=[extension])
    assert refusal(tsa.respond(query)) == ("rejection", {"unaccepted_extensions"})


def test_another_request_version_is_refused(tsa: TimeStampAuthority) -> None:
    assert refusal(tsa.respond(_query(version=2))) == ("rejection", {"bad_request"})


@pytest.mark.parametrize("offset", [timedelta(days=-1), timedelta(days=4 * 365)])
def test_outside_the_certificate_validity_it_refuses_to_stamp(
    setup: Setup, offset: timedelta
) -> None:
    tsa = setup.authority(clock=fixed_clock(NOW + offset))
    assert refusal(tsa.respond(request(DATA))) == ("rejection", {"system_failure"})


def test_a_naive_clock_is_a_bug_not_a_refusal(setup: Setup) -> None:
    tsa = setup.authority(clock=fixed_clock(datetime(2030, 1, 1)))
    with pytest.raises(ValueError, match="timezone-aware"):
        tsa.respond(request(DATA))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_always_get_a_der_answer(data: bytes) -> None:
    answer = parsed(_FUZZ_TSA.respond(data))
    assert answer["status"]["status"].native in {"granted", "rejection"}


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_a_request_with_one_byte_changed_gets_a_der_answer(position: int, value: int) -> None:
    query = bytearray(request(DATA, policy=DEFAULT_POLICY, cert_req=False))
    query[position % len(query)] = value
    answer = parsed(_FUZZ_TSA.respond(bytes(query)))
    assert answer["status"]["status"].native in {"granted", "rejection"}


def _fuzz_tsa() -> TimeStampAuthority:
    pki = Hierarchy.make()
    key = ec.generate_private_key(ec.SECP256R1())
    return TimeStampAuthority(key, pki.issue(TSA, "Fuzz TSA", key=key), [pki.issuing])


_FUZZ_TSA = _fuzz_tsa()  # hypothesis refuses function-scoped fixtures; this one is stateless


# The TSA certificate.


def test_the_tsa_certificate_eku_is_critical_and_time_stamping_only(
    tmp_path: Path, setup: Setup
) -> None:
    extension = setup.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert extension.critical
    assert list(extension.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    cert_pem = pem(tmp_path / "tsa.pem", setup.certificate)
    text = subprocess.run(
        [openssl(), "x509", "-in", str(cert_pem), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line.strip() for line in text.splitlines()]
    eku = lines.index("X509v3 Extended Key Usage: critical")
    assert lines[eku + 1] == "Time Stamping", text
    assert "Digital Signature, Non Repudiation" in text, text
    # openssl's timestampsign purpose is RFC 3161 2.3's rule: EKU critical, timeStamping only
    verdict = subprocess.run(
        [
            openssl(),
            "verify",
            "-purpose",
            "timestampsign",
            "-CAfile",
            str(pem(tmp_path / "root.pem", setup.pki.root)),
            "-untrusted",
            str(pem(tmp_path / "issuing.pem", setup.pki.issuing)),
            str(cert_pem),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr


def test_other_profiles_keep_a_non_critical_eku(setup: Setup) -> None:
    certificate = setup.pki.issue(QR_SIGNER, "QR signer")
    assert not certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).critical


def test_it_refuses_a_certificate_or_key_unfit_for_time_stamping(setup: Setup) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    qr_certificate = setup.pki.issue(QR_SIGNER, "QR signer", key=key)
    with pytest.raises(ValueError, match="timeStamping only"):
        TimeStampAuthority(key, qr_certificate, [setup.pki.issuing])
    with pytest.raises(ValueError, match="does not belong"):
        TimeStampAuthority(key, setup.certificate, [setup.pki.issuing])
    with pytest.raises(ValueError, match="intermediates only"):
        TimeStampAuthority(setup.key, setup.certificate, [setup.pki.issuing, setup.pki.root])
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(TypeError, match="P-256"):
        TimeStampAuthority(p384, setup.pki.issue(TSA, "TSA", key=p384), [setup.pki.issuing])


# pyHanko as the peer: a PAdES B-T signature stamped over HTTP, and a token validated alone.


@pytest.fixture
def tsa_url(tsa: TimeStampAuthority) -> Iterator[str]:
    yield from _serve(tsa)


def _serve(tsa: TimeStampAuthority) -> Generator[str, None, None]:
    with serving(tsa.respond) as url:
        yield url


def _officer(setup: Setup) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, setup.pki.issue(OFFICER_SIGNING, "District Education Officer", key=key)


def test_sign_pdf_through_it_gives_pades_b_t_that_validates(setup: Setup, tsa_url: str) -> None:
    key, certificate = _officer(setup)
    signed = sign_pdf(
        a_pdf(),
        key=key,
        certificate=certificate,
        chain=[setup.pki.issuing],
        timestamper=http_timestamper(tsa_url),
    )
    check = validate_pdf(
        signed, trust_roots=[setup.pki.root], now=datetime.now(UTC) + timedelta(minutes=1)
    )
    assert check.problem is None
    assert check.ok
    (embedded,) = PdfFileReader(io.BytesIO(signed)).embedded_signatures
    (stamp_attr,) = [
        a
        for a in embedded.signer_info["unsigned_attrs"]
        if a["type"].native == "signature_time_stamp_token"
    ]
    stamp = stamp_attr["values"][0]["content"]
    (tsa_signer,) = stamp["signer_infos"]
    assert tsa_signer["sid"].chosen["serial_number"].native == setup.certificate.serial_number


def test_a_tsa_rejection_fails_the_signing(setup: Setup) -> None:
    """Better no signature than a B-T signature quietly signed as B-B."""
    expired = setup.authority(clock=fixed_clock(NOW + timedelta(days=4 * 365)))
    key, certificate = _officer(setup)
    server = _serve(expired)
    url = next(server)
    try:
        # pyHanko reads the rejection with asn1crypto's TimeStampResp, which wrongly demands a
        # token and so raises ValueError, not pyHanko's TimestampRequestError
        with pytest.raises((ValueError, OSError), match=r"time_stamp_token|refused"):
            sign_pdf(
                a_pdf(),
                key=key,
                certificate=certificate,
                chain=[setup.pki.issuing],
                timestamper=http_timestamper(url),
            )
    finally:
        server.close()


def _pyhanko_check(response: bytes, root: x509.Certificate) -> TimestampSignatureStatus:
    kwargs = asyncio.run(
        validate_tst_signed_data(
            token(response),
            validation_context([root], LATER),
            lambda algorithm: hashlib.new(algorithm, DATA).digest(),
        )
    )
    return TimestampSignatureStatus(**kwargs)


def test_pyhanko_validates_a_token_alone(setup: Setup) -> None:
    tsa = setup.authority(clock=fixed_clock(CLOCK_TIME))
    status = _pyhanko_check(tsa.respond(request(DATA)), setup.pki.root)
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.timestamp == GEN_TIME
    assert status.signing_cert.dump() == setup.certificate.public_bytes(serialization.Encoding.DER)


def test_pyhanko_does_not_trust_a_token_under_another_root(setup: Setup) -> None:
    status = _pyhanko_check(setup.authority().respond(request(DATA)), Hierarchy.make().root)
    assert status.intact
    assert status.valid
    assert not status.trusted
