"""Checkpoints as C2SP signed notes, signed with Ed25519. Pure: no files, no network.

Witnesses and other transparency-log tooling do not speak our HTTP API; they speak
c2sp.org/tlog-checkpoint, a c2sp.org/signed-note whose text is ``origin``, tree size and base64
root hash, one per line. Serving our checkpoints in that form (DESIGN.md, "The log") lets any
Go/Rust/TS witness cosign them and lets anyone holding the operator's verifier key check them
without trusting the API.

Formats implemented here, byte for byte as the specs and golang.org/x/mod/sumdb/note:

* checkpoint body — ``<origin>\\n<size>\\n<base64 root>\\n`` plus optional non-empty extension
  lines (tlog-checkpoint "Note text");
* signed note — body, a blank line, then ``— <key name> <base64(key ID ‖ signature)>\\n`` per
  signature (signed-note "Format");
* key ID — ``SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ Ed25519 public key)[:4]``, big-endian
  (signed-note "Ed25519 signatures");
* verifier key — ``<name>+<8 hex digits of the key ID>+<base64(0x01 ‖ public key)>``, the
  encoding of golang.org/x/mod/sumdb/note ``NewVerifier``.

Verification follows signed-note "Signatures": signatures by other keys are ignored, a
signature by the known key that fails rejects the whole note, and a note with no verified
signature by the known key is rejected. Verifiers return the authenticated content or raise a
:class:`~ledger.errors.VerificationError` subclass; they never return a ``bool``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import InvalidInput, VerificationError

__all__ = [
    "MAX_SIGNATURES",
    "BadSignatureError",
    "Checkpoint",
    "InvalidVerifierKeyError",
    "MalformedCheckpointError",
    "MalformedNoteError",
    "NoteSigner",
    "UnknownKeyError",
    "checkpoint_body",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "verify_note",
]

MAX_SIGNATURES = 100
"""Signature lines accepted per note. signed-note: verifiers SHOULD cap it and MUST accept 16;
100 is golang.org/x/mod/sumdb/note's cap, so we accept every note Go tooling accepts."""

ED25519_TYPE = b"\x01"
"""signed-note "Signature types": the identifier byte of Ed25519 signatures."""

SIG_PREFIX = "\u2014 "
"""An em dash (U+2014) and a space start every signature line (signed-note "Format")."""

ROOT_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1  # the anchor contract and every checkpoint consumer use uint64 sizes
_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # tlog-checkpoint: ASCII decimal, no leading zeroes
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


# --------------------------------------------------------------------------------------------
# Errors: one code per way a note can be refused.


class MalformedNoteError(VerificationError, ValueError):
    """The text is not a well-formed signed note (signed-note "Format"); ``reason`` says why."""

    code = "malformed_note"
    what = "malformed signed note"

    def __init__(self, reason: str) -> None:
        super().__init__(f"{self.what}: {reason}", reason=reason)
        self.reason = reason


class MalformedCheckpointError(MalformedNoteError):
    """The note text is not a tlog-checkpoint body (tlog-checkpoint "Note text")."""

    code = "malformed_checkpoint"
    what = "malformed checkpoint"


class InvalidVerifierKeyError(VerificationError, ValueError):
    """The verifier key string is not ``name+keyid+base64(0x01 ‖ pubkey)`` with a matching key ID."""

    code = "invalid_verifier_key"

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid verifier key: {reason}", reason=reason)
        self.reason = reason


class UnknownKeyError(VerificationError):
    """No signature line is by the verifier key (same name *and* key ID): signed-note says such
    a note MUST be rejected. ``signers`` lists the ``(name, key ID)`` pairs that did sign."""

    code = "unknown_key"

    def __init__(self, name: str, key_id: int, signers: Sequence[tuple[str, int]]) -> None:
        shown = ", ".join(f"{n}+{k:08x}" for n, k in signers) or "none"
        super().__init__(
            f"note is not signed by {name}+{key_id:08x} (signed by: {shown})",
            name=name,
            key_id=f"{key_id:08x}",
            signers=[f"{n}+{k:08x}" for n, k in signers],
        )
        self.name = name
        self.key_id = key_id
        self.signers = list(signers)


class BadSignatureError(VerificationError):
    """The signature line of the verifier key does not verify over the note text: the text was
    altered or forged. signed-note: the whole note is then rejected."""

    code = "bad_signature"

    def __init__(self, name: str, key_id: int) -> None:
        super().__init__(
            f"signature by {name}+{key_id:08x} does not verify", name=name, key_id=f"{key_id:08x}"
        )
        self.name = name
        self.key_id = key_id


# --------------------------------------------------------------------------------------------
# Shared validation


def _b64decode_strict(text: str) -> bytes | None:
    """RFC 4648 §4 standard base64 with padding, canonical only (re-encodes to the same text)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _text_problem(text: str) -> str | None:
    """signed-note "Format": valid UTF-8 and no ASCII control character other than newline."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    bad = next((c for c in text if c < " " and c != "\n"), None)
    return None if bad is None else f"control character U+{ord(bad):04X}"


def _name_problem(name: str) -> str | None:
    """signed-note: key names are non-empty, with no Unicode space and no plus (U+002B)."""
    if not name:
        return "empty key name"
    if any(c.isspace() for c in name) or "+" in name:
        return f"key name {name!r} contains a space or '+'"
    return _text_problem(name)


def key_id(name: str, public_key: bytes) -> int:
    """signed-note "Ed25519 signatures": ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]`` as a uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key).digest()
    return int.from_bytes(digest[:4], "big")


# --------------------------------------------------------------------------------------------
# Checkpoint bodies (tlog-checkpoint "Note text")


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint body. ``extension_lines`` are opaque and, per tlog-checkpoint, optional."""

    origin: str
    size: int
    root: bytes
    extension_lines: tuple[str, ...] = ()


def checkpoint_body(origin: str, size: int, root: bytes, *, extension_lines: Sequence[str] = ()) -> str:
    """The note text of a checkpoint: ``origin``, decimal ``size``, base64 ``root``, one per line.

    Refuses (``InvalidInput``, code ``invalid_checkpoint``) anything :func:`parse_checkpoint`
    would refuse, so we never sign a checkpoint a witness cannot read.
    """
    lines = [origin, *extension_lines]
    problem = next((p for p in map(_line_problem, lines) if p), None)
    if problem is None and not (type(size) is int and 0 <= size <= MAX_TREE_SIZE):
        problem = f"tree size {size!r} is not an integer in [0, 2^64)"
    if problem is None and len(root) != ROOT_SIZE:
        problem = f"root is {len(root)} bytes, want {ROOT_SIZE}"
    if problem is not None:
        raise InvalidInput(f"cannot build checkpoint: {problem}", code="invalid_checkpoint")
    root_b64 = base64.b64encode(root).decode("ascii")
    return "".join(f"{line}\n" for line in [origin, str(size), root_b64, *extension_lines])


def _line_problem(line: str) -> str | None:
    """tlog-checkpoint: every line of the body is non-empty (and holds no newline)."""
    if not line:
        return "empty line"
    if "\n" in line:
        return f"line {line!r} contains a newline"
    return _text_problem(line)


def _parse_body(text: str) -> Checkpoint:
    problem = _text_problem(text)
    if problem is not None:
        raise MalformedCheckpointError(problem)
    if not text.endswith("\n"):
        raise MalformedCheckpointError("body does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpointError(f"{len(lines)} lines, want at least 3 (origin, size, root)")
    if any(not line for line in lines):
        raise MalformedCheckpointError("empty line in the body")
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise MalformedCheckpointError(
            f"tree size {size_text!r} is not a decimal in [0, 2^64) without leading zeroes"
        )
    root = _b64decode_strict(root_text)
    if root is None:
        raise MalformedCheckpointError(f"root hash {root_text!r} is not canonical base64")
    if len(root) != ROOT_SIZE:
        raise MalformedCheckpointError(f"root hash is {len(root)} bytes, want {ROOT_SIZE}")
    return Checkpoint(origin=origin, size=int(size_text), root=root, extension_lines=tuple(extensions))


# --------------------------------------------------------------------------------------------
# Signed notes (signed-note "Format")


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_id: int
    signature: bytes


def _split_note(note: str) -> tuple[str, list[_SignatureLine]]:
    """Split a signed note into its text and signature lines, checking only the framing.

    The text ends at the *last* blank line (signed-note: the text MAY contain empty lines).
    """
    problem = _text_problem(note)
    if problem is not None:
        raise MalformedNoteError(problem)
    if not note.endswith("\n"):
        raise MalformedNoteError("note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line between the text and the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise MalformedNoteError("no signature lines")
    raw_lines = block[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"{len(raw_lines)} signatures, at most {MAX_SIGNATURES} accepted")
    parsed: list[_SignatureLine] = []
    for line in raw_lines:
        if not line.startswith(SIG_PREFIX):
            raise MalformedNoteError(f"signature line {line!r} does not start with an em dash and a space")
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        name_problem = _name_problem(name)
        if name_problem is not None:
            raise MalformedNoteError(name_problem)
        blob = _b64decode_strict(b64)
        if blob is None or len(blob) < 5:
            raise MalformedNoteError(f"signature of {name!r} is not base64 of a key ID and a signature")
        parsed.append(_SignatureLine(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    return text, parsed


@dataclass(frozen=True)
class _Verifier:
    name: str
    key_id: int
    public_key: Ed25519PublicKey


def _parse_verifier_key(verifier_key: str) -> _Verifier:
    parts = verifier_key.split("+", 2)  # the base64 key itself may contain '+'
    if len(parts) != 3:
        raise InvalidVerifierKeyError("want <name>+<key ID hex>+<base64 key>")
    name, id_hex, key_b64 = parts
    problem = _name_problem(name)
    if problem is not None:
        raise InvalidVerifierKeyError(problem)
    if not _HEX8.fullmatch(id_hex):
        raise InvalidVerifierKeyError(f"key ID {id_hex!r} is not 8 hex digits")
    key = _b64decode_strict(key_b64)
    if key is None or len(key) != 1 + 32 or key[:1] != ED25519_TYPE:
        raise InvalidVerifierKeyError("key is not base64 of 0x01 and a 32-byte Ed25519 public key")
    if key_id(name, key[1:]) != int(id_hex, 16):
        raise InvalidVerifierKeyError(f"key ID {id_hex} does not match the name and key")
    return _Verifier(name, int(id_hex, 16), Ed25519PublicKey.from_public_bytes(key[1:]))


def open_note(note: str, verifier_key: str) -> str:
    """Return the text of ``note`` once a signature by ``verifier_key`` verifies over it.

    signed-note "Signatures": lines by other keys (another name or another key ID) are ignored;
    a second line by the same key is malformed (Go rejects it too); a line by the key that does
    not verify raises :class:`BadSignatureError`; no line by the key raises
    :class:`UnknownKeyError`. Framing errors raise :class:`MalformedNoteError`.
    """
    verifier = _parse_verifier_key(verifier_key)
    text, lines = _split_note(note)
    verified = False
    for line in lines:
        if (line.name, line.key_id) != (verifier.name, verifier.key_id):
            continue
        if verified:
            raise MalformedNoteError(f"two signatures by {verifier.name}+{verifier.key_id:08x}")
        if len(line.signature) != 64:
            raise BadSignatureError(verifier.name, verifier.key_id)
        try:
            verifier.public_key.verify(line.signature, text.encode("utf-8"))
        except InvalidSignature:
            raise BadSignatureError(verifier.name, verifier.key_id) from None
        verified = True
    if not verified:
        raise UnknownKeyError(verifier.name, verifier.key_id, [(s.name, s.key_id) for s in lines])
    return text


def verify_note(note: str, verifier_key: str) -> Checkpoint:
    """Authenticate a signed checkpoint and return it parsed.

    The signature is checked before the body is parsed: signed-note says the text MUST be ignored
    unless a trusted signature verifies, so a forged body reports ``bad_signature`` however
    malformed it is. A correctly signed body that is not a checkpoint raises
    :class:`MalformedCheckpointError`.
    """
    return _parse_body(open_note(note, verifier_key))


def parse_checkpoint(note: str) -> Checkpoint:
    """Parse a checkpoint body, or the body of a signed checkpoint, **without authenticating it**.

    A body has no blank line (tlog-checkpoint: all lines are non-empty), so text containing one
    is a signed note: its framing is checked and its signatures are dropped unverified. For
    anything that must be trusted, use :func:`verify_note`.
    """
    text = _split_note(note)[0] if "\n\n" in note else note
    return _parse_body(text)


# --------------------------------------------------------------------------------------------
# Signing


class NoteSigner:
    """An Ed25519 note signing key with its key name (signed-note: RECOMMENDED a schema-less URL;
    for checkpoints tlog-checkpoint says it SHOULD equal the log's origin)."""

    def __init__(self, *, name: str, private_key: Ed25519PrivateKey) -> None:
        problem = _name_problem(name)
        if problem is not None:
            raise InvalidInput(f"invalid note key name: {problem}", code="invalid_key_name")
        self.name = name
        self._private_key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes_raw()
        self.key_id: int = key_id(name, self.public_key)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A fresh key from the OS CSPRNG (via ``cryptography``)."""
        return cls(name=name, private_key=Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> NoteSigner:
        """Rebuild a signer from the 32-byte RFC 8032 seed returned by :meth:`private_bytes`."""
        if len(raw) != 32:
            raise InvalidInput(
                f"Ed25519 private key is {len(raw)} bytes, want 32", code="invalid_private_key"
            )
        return cls(name=name, private_key=Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """The 32-byte seed, for the caller to seal at rest; this module never stores it."""
        return self._private_key.private_bytes_raw()

    def verifier_key(self) -> str:
        """``<name>+<key ID hex>+<base64(0x01 ‖ pubkey)>``, what verifiers and witnesses are given."""
        key_b64 = base64.b64encode(ED25519_TYPE + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{key_b64}"

    def sign(self, body: str) -> str:
        """The signed note: ``body``, a blank line, and this key's signature line.

        ``body`` must be note text that verifiers accept: non-empty, newline-terminated, UTF-8
        without control characters other than newline (signed-note "Format").
        """
        problem = _text_problem(body)
        if problem is None and not body.endswith("\n"):
            problem = "text does not end with a newline"
        if problem is not None:
            raise InvalidInput(f"cannot sign note text: {problem}", code="invalid_note_text")
        signature = self._private_key.sign(body.encode("utf-8"))
        blob = base64.b64encode(self.key_id.to_bytes(4, "big") + signature).decode("ascii")
        return f"{body}\n{SIG_PREFIX}{self.name} {blob}\n"

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id:08x})"
