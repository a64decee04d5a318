"""C2SP signed notes and tlog-checkpoints (ledger.log.note): formats, known answers, refusals."""

from __future__ import annotations

import base64
import hashlib
import string
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput, VerificationError
from ledger.log.merkle import EMPTY_ROOT
from ledger.log.note import (
    MAX_SIGNATURES,
    BadSignatureError,
    Checkpoint,
    InvalidVerifierKeyError,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteSigner,
    UnknownKeyError,
    checkpoint_body,
    open_note,
    parse_checkpoint,
    verify_note,
)

ORIGIN = "example.com/log"
ROOT = hashlib.sha256(b"a root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
BODY = f"{ORIGIN}\n12345\n{ROOT_B64}\n"

# golang.org/x/mod/sumdb/note note_test.go: the reference implementation's own key and note.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.from_private_bytes(ORIGIN, hashlib.sha256(b"test note key").digest())


@pytest.fixture(scope="module")
def note(signer: NoteSigner) -> str:
    return signer.sign(BODY)


def _noncanonical(b64: str) -> str:
    """Same bytes, but with a padding bit set in the last symbol: RFC 4648 §3.5 says canonical
    encoders leave those bits zero, and we accept only canonical base64."""
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    last = b64.rstrip("=")[-1]
    padded = alphabet[alphabet.index(last) | 1]
    assert padded != last, "pick a root whose last base64 symbol has a zero low bit"
    return b64.rstrip("=")[:-1] + padded + "=" * (len(b64) - len(b64.rstrip("=")))


def _sig_line(note: str) -> str:
    return note[note.rindex("\n\n") + 2 :]


# --------------------------------------------------------------------------------------------
# Round trip and format


def test_round_trip(signer: NoteSigner, note: str) -> None:
    assert checkpoint_body(ORIGIN, 12345, ROOT) == BODY
    want = Checkpoint(origin=ORIGIN, size=12345, root=ROOT, extension_lines=())
    assert verify_note(note, signer.verifier_key()) == want
    assert open_note(note, signer.verifier_key()) == BODY
    assert parse_checkpoint(note) == want == parse_checkpoint(BODY)
    line = _sig_line(note)
    assert note == BODY + "\n" + line and line.startswith(f"\u2014 {ORIGIN} ") and line.endswith("=\n")
    blob = base64.b64decode(line.split(" ")[2].rstrip("\n"), validate=True)
    assert len(blob) == 4 + 64 and int.from_bytes(blob[:4], "big") == signer.key_id


def test_sealed_key_restores_the_same_signer(signer: NoteSigner, note: str) -> None:
    again = NoteSigner.from_private_bytes(ORIGIN, signer.private_bytes())
    assert len(signer.private_bytes()) == 32
    assert again.verifier_key() == signer.verifier_key()
    assert again.sign(BODY) == note, "Ed25519 is deterministic (RFC 8032 §5.1.6)"
    assert signer.private_bytes().hex() not in repr(signer)


def test_generated_keys_are_distinct_and_verify() -> None:
    a, b = NoteSigner.generate(ORIGIN), NoteSigner.generate(ORIGIN)
    assert a.private_bytes() != b.private_bytes() and a.key_id != b.key_id
    assert verify_note(a.sign(BODY), a.verifier_key()).size == 12345


def test_extension_lines_and_edge_sizes_round_trip(signer: NoteSigner) -> None:
    for size, root, extensions in [(0, EMPTY_ROOT, ()), (2**64 - 1, ROOT, ("ext one", "— ext two"))]:
        body = checkpoint_body(ORIGIN, size, root, extension_lines=extensions)
        assert body.count("\n") == 3 + len(extensions)
        assert verify_note(signer.sign(body), signer.verifier_key()) == Checkpoint(
            ORIGIN, size, root, extensions
        )


def test_note_text_may_contain_empty_lines(signer: NoteSigner) -> None:
    """signed-note: the text ends at the *last* blank line; earlier ones belong to it."""
    text = "first\n\nsecond\n\n"
    assert open_note(signer.sign(text), signer.verifier_key()) == text


ORIGINS = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
)  # no control characters (so no newline) and no lone surrogates: what a UTF-8 note can carry


@given(origin=ORIGINS, size=st.integers(0, 2**64 - 1), root=st.binary(min_size=32, max_size=32))
def test_any_checkpoint_round_trips(origin: str, size: int, root: bytes) -> None:
    signer = NoteSigner.from_private_bytes("witness.example/k", bytes(range(32)))
    note = signer.sign(checkpoint_body(origin, size, root))
    assert verify_note(note, signer.verifier_key()) == Checkpoint(origin, size, root)


# --------------------------------------------------------------------------------------------
# Known answers


def test_known_answer_all_zero_key() -> None:
    """Ed25519 seed of 32 zero bytes; the key ID is recomputed here from the signed-note formula."""
    signer = NoteSigner.from_private_bytes(ORIGIN, bytes(32))
    public = bytes.fromhex("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")
    assert signer.public_key == public  # the well-known public key of the all-zero Ed25519 seed
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n" + b"\x01" + public).digest()[:4]
    assert signer.key_id == int.from_bytes(expected_id, "big") == 0x1DDE4531
    key_b64 = base64.b64encode(b"\x01" + public).decode()
    assert signer.verifier_key() == f"{ORIGIN}+{expected_id.hex()}+{key_b64}"
    assert signer.verifier_key() == "example.com/log+1dde4531+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"

    body = checkpoint_body(ORIGIN, 5, bytes(range(32)))
    assert body == "example.com/log\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    note = signer.sign(body)
    blob = base64.b64decode(_sig_line(note).split(" ")[2].rstrip("\n"), validate=True)
    assert blob[:4] == expected_id
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], body.encode())  # raises if wrong
    assert note == body + (
        "\n— example.com/log Hd5FMfUk8H2aIAzpnVE0mCYcifHY1PlAybbZAZR3YIz4WA+JbOfijxAiK8O/"
        "hXtC9sysSzA5/+q4YQfot1SqSP4HhQ8=\n"
    )


def test_known_answer_go_reference_note() -> None:
    """Byte-for-byte agreement with golang.org/x/mod/sumdb/note, so Go witnesses accept our notes."""
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    signer = NoteSigner.from_private_bytes("PeterNeumann", seed)
    assert signer.verifier_key() == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, GO_VKEY) == GO_TEXT
    with pytest.raises(MalformedCheckpointError) as info:  # authentic, but not a checkpoint
        verify_note(GO_NOTE, GO_VKEY)
    assert info.value.code == "malformed_checkpoint"
    with pytest.raises(BadSignatureError):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), GO_VKEY)


# --------------------------------------------------------------------------------------------
# Which signatures count (signed-note "Signatures")


def test_a_note_signed_by_another_key_is_unknown_key(signer: NoteSigner) -> None:
    for other in (
        NoteSigner.from_private_bytes(ORIGIN, bytes([7]) * 32),  # same name, other key → other key ID
        NoteSigner.from_private_bytes("other.example/log", signer.private_bytes()),  # same key, other name
    ):
        with pytest.raises(UnknownKeyError) as info:
            verify_note(other.sign(BODY), signer.verifier_key())
        assert info.value.code == "unknown_key"
        assert info.value.signers == [(other.name, other.key_id)]
        assert (info.value.name, info.value.key_id) == (signer.name, signer.key_id)


def test_signatures_by_other_keys_are_ignored(signer: NoteSigner, note: str) -> None:
    other = NoteSigner.from_private_bytes(ORIGIN, bytes([7]) * 32)
    cosigned = note + _sig_line(other.sign(BODY))
    assert verify_note(cosigned, signer.verifier_key()).size == 12345
    assert verify_note(cosigned, other.verifier_key()).size == 12345
    # Same key ID under another name, with garbage: not our key, so ignored (not a bad signature).
    forged_id = base64.b64encode(signer.key_id.to_bytes(4, "big") + bytes(64)).decode()
    with_foreign = BODY + f"\n— impostor.example {forged_id}\n" + _sig_line(note)
    assert verify_note(with_foreign, signer.verifier_key()).size == 12345


def test_up_to_the_signature_limit_is_accepted(signer: NoteSigner, note: str) -> None:
    filler = "".join(f"— w{i}.example AAAAAAAA\n" for i in range(MAX_SIGNATURES - 1))
    assert verify_note(note + filler, signer.verifier_key()).size == 12345
    with pytest.raises(MalformedNoteError) as info:
        verify_note(note + filler + "— one.more AAAAAAAA\n", signer.verifier_key())
    assert info.value.code == "malformed_note"


def test_two_signatures_by_the_same_key_are_malformed(signer: NoteSigner, note: str) -> None:
    with pytest.raises(MalformedNoteError) as info:
        verify_note(note + _sig_line(note), signer.verifier_key())
    assert info.value.code == "malformed_note" and "two signatures" in info.value.reason


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda n: n.replace("\n12345\n", "\n12346\n"), id="size"),
        pytest.param(lambda n: n.replace(ROOT_B64, base64.b64encode(EMPTY_ROOT).decode()), id="root"),
        pytest.param(lambda n: n.replace(f"{ORIGIN}\n", "example.com/loh\n", 1), id="origin"),
        pytest.param(lambda n: n.replace("\n\n", "\nextension\n\n"), id="added_extension_line"),
        pytest.param(lambda n: n.replace("\n12345\n", "\n012345\n"), id="leading_zero_size_unsigned"),
    ],
)
def test_a_modified_checkpoint_is_bad_signature(
    signer: NoteSigner, note: str, tamper: Callable[[str], str]
) -> None:
    """The signature is checked before the body is parsed, so even a now-malformed body reports
    bad_signature: signed-note says unverified text MUST be ignored."""
    forged = tamper(note)
    assert forged != note and _sig_line(forged) == _sig_line(note)
    with pytest.raises(BadSignatureError) as info:
        verify_note(forged, signer.verifier_key())
    assert info.value.code == "bad_signature"
    assert (info.value.name, info.value.key_id) == (ORIGIN, signer.key_id)


def test_a_modified_signature_is_bad_signature(signer: NoteSigner, note: str) -> None:
    blob = base64.b64decode(_sig_line(note).split(" ")[2].rstrip("\n"))
    flipped, short, long = blob[:-1] + bytes([blob[-1] ^ 1]), blob[:-1], blob + b"\x00"
    for forged_blob in (flipped, short, long):
        line = f"— {ORIGIN} {base64.b64encode(forged_blob).decode()}\n"
        with pytest.raises(BadSignatureError) as info:
            verify_note(BODY + "\n" + line, signer.verifier_key())
        assert info.value.code == "bad_signature"


# --------------------------------------------------------------------------------------------
# Malformed notes: refused before any signature check


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda n: n.replace("\n\n", "\n"), id="missing_blank_line"),
        pytest.param(lambda n: n[:-1], id="no_trailing_newline"),
        pytest.param(lambda n: n.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda n: n[: n.rindex(" ") + 1] + "not*base64=\n", id="bad_signature_base64"),
        pytest.param(lambda n: n[: n.rindex("=")] + "\n", id="signature_base64_without_padding"),
        pytest.param(lambda n: n[: n.rindex(" ") + 1] + "AAAAAA==\n", id="signature_shorter_than_key_id"),
        pytest.param(lambda n: n.replace("\u2014 ", "-- "), id="no_em_dash"),
        pytest.param(lambda n: n.replace("\u2014 ", "\u2014"), id="no_space_after_em_dash"),
        pytest.param(lambda n: n.replace(f"\u2014 {ORIGIN}", "\u2014 a+b"), id="plus_in_key_name"),
        pytest.param(lambda n: n.replace(f"\u2014 {ORIGIN} ", "\u2014 "), id="no_key_name"),
        pytest.param(lambda n: n[: n.rindex("\n\n") + 2], id="no_signature_lines"),
        pytest.param(lambda n: n + "\n", id="blank_line_after_signatures"),
        pytest.param(lambda n: n + "trailing text\n", id="text_after_signatures"),
        pytest.param(lambda n: n.replace("12345", "123\x0045"), id="nul_character"),
        pytest.param(lambda n: n.replace("12345", "123\ud80045"), id="lone_surrogate"),
    ],
)
def test_a_malformed_note_is_malformed_note(
    signer: NoteSigner, note: str, mangle: Callable[[str], str]
) -> None:
    mangled = mangle(note)
    assert mangled != note
    with pytest.raises(MalformedNoteError) as info:
        verify_note(mangled, signer.verifier_key())
    assert type(info.value) is MalformedNoteError and info.value.code == "malformed_note"
    assert isinstance(info.value, VerificationError) and isinstance(info.value, ValueError)
    with pytest.raises(MalformedNoteError) as info:
        open_note(mangled, signer.verifier_key())
    assert type(info.value) is MalformedNoteError
    if "\n\n" in mangled:  # reads as a signed note, so the unauthenticated parser checks framing too
        with pytest.raises(MalformedNoteError) as info:
            parse_checkpoint(mangled)
        assert type(info.value) is MalformedNoteError


BAD_BODIES = {
    "root_not_base64": f"{ORIGIN}\n5\nnot base64!\n",
    "root_base64_without_padding": f"{ORIGIN}\n5\n{ROOT_B64.rstrip('=')}\n",
    "root_noncanonical_base64": f"{ORIGIN}\n5\n{_noncanonical(ROOT_B64)}\n",
    "root_31_bytes": f"{ORIGIN}\n5\n{base64.b64encode(ROOT[:31]).decode()}\n",
    "root_33_bytes": f"{ORIGIN}\n5\n{base64.b64encode(ROOT + b'x').decode()}\n",
    "root_hex": f"{ORIGIN}\n5\n{ROOT.hex()}\n",
    "size_leading_zero": f"{ORIGIN}\n05\n{ROOT_B64}\n",
    "size_zero_zero": f"{ORIGIN}\n00\n{ROOT_B64}\n",
    "size_negative": f"{ORIGIN}\n-5\n{ROOT_B64}\n",
    "size_plus_sign": f"{ORIGIN}\n+5\n{ROOT_B64}\n",
    "size_space": f"{ORIGIN}\n 5\n{ROOT_B64}\n",
    "size_fullwidth_digit": f"{ORIGIN}\n５\n{ROOT_B64}\n",
    "size_arabic_indic_digit": f"{ORIGIN}\n٣\n{ROOT_B64}\n",
    "size_hex": f"{ORIGIN}\n0x5\n{ROOT_B64}\n",
    "size_2_to_64": f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n",
    "size_empty": f"{ORIGIN}\n\n{ROOT_B64}\n",
    "empty_origin": f"\n5\n{ROOT_B64}\n",
    "two_lines": f"{ORIGIN}\n5\n",
    "empty_extension_line": f"{ORIGIN}\n5\n{ROOT_B64}\n\next\n",
    "trailing_empty_line": f"{ORIGIN}\n5\n{ROOT_B64}\n\n",
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_a_signed_non_checkpoint_is_malformed_checkpoint(signer: NoteSigner, name: str) -> None:
    body = BAD_BODIES[name]
    note = signer.sign(body)
    assert open_note(note, signer.verifier_key()) == body, "the signature itself is fine"
    with pytest.raises(MalformedCheckpointError) as info:
        verify_note(note, signer.verifier_key())
    assert info.value.code == "malformed_checkpoint"
    with pytest.raises(MalformedCheckpointError):
        parse_checkpoint(note)
    if "\n\n" not in body:  # a bare body (one with a blank line reads as a note without signatures)
        with pytest.raises(MalformedCheckpointError):
            parse_checkpoint(body)


def test_a_bare_body_without_trailing_newline_is_malformed_checkpoint() -> None:
    with pytest.raises(MalformedCheckpointError) as info:
        parse_checkpoint(BODY[:-1])
    assert info.value.code == "malformed_checkpoint"


# --------------------------------------------------------------------------------------------
# Verifier keys


def test_every_mangling_of_a_verifier_key_is_refused() -> None:
    """Port of note_test.go TestNewVerifier: every proper substring and every byte+1 must fail."""
    for i in range(len(GO_VKEY) + 1):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(InvalidVerifierKeyError):
                    open_note(GO_NOTE, GO_VKEY[i:j])
    for i in range(len(GO_VKEY)):
        mangled = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1 :]
        with pytest.raises(InvalidVerifierKeyError) as info:
            open_note(GO_NOTE, mangled)
        assert info.value.code == "invalid_verifier_key"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", id="wrong_key_id"),
        pytest.param(
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", id="uppercase_hex_ok"
        ),
        pytest.param("PeterNeumann+c74f20a3+AhpdLQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", id="not_ed25519"),
        pytest.param("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10", id="short_key"),
        pytest.param(
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", id="seven_hex_digits"
        ),
        pytest.param("PeterNeumann+c74f20a3", id="two_parts"),
        pytest.param(
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", id="space_in_name"
        ),
        pytest.param("", id="empty"),
    ],
)
def test_a_bad_verifier_key_is_refused(key: str) -> None:
    if key.startswith("PeterNeumann+C74F20A3+"):  # hex is hex: Go's ParseUint accepts either case
        assert open_note(GO_NOTE, key) == GO_TEXT
        return
    with pytest.raises(InvalidVerifierKeyError) as info:
        open_note(GO_NOTE, key)
    assert info.value.code == "invalid_verifier_key"


# --------------------------------------------------------------------------------------------
# What the signer refuses to produce


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        pytest.param("", 1, ROOT, (), id="empty_origin"),
        pytest.param("a\nb", 1, ROOT, (), id="newline_in_origin"),
        pytest.param("a\rb", 1, ROOT, (), id="cr_in_origin"),
        pytest.param(ORIGIN, -1, ROOT, (), id="negative_size"),
        pytest.param(ORIGIN, 2**64, ROOT, (), id="size_too_big"),
        pytest.param(ORIGIN, True, ROOT, (), id="bool_size"),
        pytest.param(ORIGIN, 1, ROOT[:31], (), id="root_31_bytes"),
        pytest.param(ORIGIN, 1, ROOT, ("",), id="empty_extension_line"),
        pytest.param(ORIGIN, 1, ROOT, ("a\nb",), id="newline_in_extension_line"),
    ],
)
def test_checkpoint_body_refuses_what_parsers_would(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidInput) as info:
        checkpoint_body(origin, size, root, extension_lines=extensions)
    assert info.value.code == "invalid_checkpoint"


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u3000b", "a\tb", "a\nb"])
def test_a_bad_key_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        NoteSigner.generate(name)
    assert info.value.code == "invalid_key_name"


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_a_private_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(InvalidInput) as info:
        NoteSigner.from_private_bytes(ORIGIN, bytes(length))
    assert info.value.code == "invalid_private_key"


@pytest.mark.parametrize("text", ["", "no newline", "crlf\r\n", "nul\x00\n", "bad \ud800\n"])
def test_the_signer_refuses_text_no_verifier_would_accept(signer: NoteSigner, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        signer.sign(text)
    assert info.value.code == "invalid_note_text"
