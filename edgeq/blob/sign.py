"""Ed25519 signatures of blobs (docs/signing.md): key generation, signing and verification on the host.

The signed message is the whole file with only the CRC fields and the 64 signature bytes taken as zero
(runtimes/include/edgeq/edgeq_blob.h, edgeq_signature_t), so one flipped bit anywhere else -- header,
section table, padding, any section, the signature's algorithm or key id -- fails verification even when
every CRC is recomputed. The C runtime verifies the same message with Monocypher (runtimes/src/signature.c).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeq.blob import layout as L
from edgeq.blob.reader import _header, _open_view, _sections, read_blob
from edgeq.blob.writer import atomic_write, seal
from edgeq.errors import BlobError, EdgeqError

HEADER_SIZE = ctypes.sizeof(L.edgeq_header_t)
SECTION_SIZE = ctypes.sizeof(L.edgeq_section_t)
SIGNATURE_SIZE = ctypes.sizeof(L.edgeq_signature_t)
SIG_BYTES_AT = L.edgeq_signature_t.signature.offset
CRC_FIELD_AT = L.edgeq_section_t.crc32.offset


class SignatureError(BlobError):
    """A blob is unsigned, signed by another key, or its signature does not verify (exit 2).

    `reason` is "unsigned", "wrong_key", "invalid" (tampered or forged) or "malformed"."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def key_id(public_key: bytes) -> bytes:
    """Names a key in the blob without trusting it: the first 16 bytes of SHA-512 of the raw key."""
    return hashlib.sha512(public_key).digest()[: L.SIG_KEY_ID_BYTES]


# ---- keys -------------------------------------------------------------------------------------

def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(public_key: bytes) -> str:
    """The .pub file format: one line of 64 hex digits (the raw key), which the C runner also reads."""
    return public_key.hex() + "\n"


def generate_key(path: str | os.PathLike, force: bool = False) -> tuple[Path, Path]:
    """Writes a new private key (PKCS#8 PEM, mode 0600) to `path` and its public key to `path`.pub."""
    path = Path(path)
    pub = path.with_name(path.name + ".pub")
    if not force and (path.exists() or pub.exists()):
        raise EdgeqError(f"{path if path.exists() else pub} exists: refusing to overwrite a key (use --force)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write(path, pem)  # its temp file comes from mkstemp: mode 0600, kept by the rename
    path.chmod(0o600)
    atomic_write(pub, public_key_text(_raw_public(key.public_key())).encode())
    pub.chmod(0o644)
    return path, pub


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise EdgeqError(f"{path}: no such {what} file") from None
    except (IsADirectoryError, PermissionError) as e:
        raise EdgeqError(f"{path}: cannot read the {what} ({e.strerror})") from None


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    """A PKCS#8 PEM Ed25519 private key (as `edgeq keygen` writes) or a raw 32-byte seed file."""
    path = Path(path)
    data = _read(path, "private key")
    if len(data) == 32:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise EdgeqError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EdgeqError(f"{path}: is a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(source: str | os.PathLike | bytes) -> bytes:
    """The raw 32-byte public key from raw bytes, a .pub file (64 hex digits) or a PEM public key file."""
    if isinstance(source, bytes):
        if len(source) != L.SIG_PUBLIC_KEY_BYTES:
            raise EdgeqError(f"an Ed25519 public key is 32 bytes, got {len(source)}")
        return source
    path = Path(source)
    data = _read(path, "public key")
    text = data.decode(errors="replace").strip()
    if len(text) == 2 * L.SIG_PUBLIC_KEY_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as e:
            raise EdgeqError(f"{path}: not a PEM public key ({e})") from None
        if isinstance(key, Ed25519PublicKey):
            return _raw_public(key)
        raise EdgeqError(f"{path}: is a {type(key).__name__}, not an Ed25519 public key")
    raise EdgeqError(f"{path}: not an Ed25519 public key (expected 64 hex digits, as `edgeq keygen` writes, or PEM)")


# ---- the signed message -------------------------------------------------------------------------

@dataclass
class _Place:
    """Where the SIGNATURE section's table entry and payload are."""

    entry_at: int
    payload_at: int


def _find_signature(buf: bytes | bytearray) -> _Place | None:
    header = L.edgeq_header_t.from_buffer_copy(buf[:HEADER_SIZE])
    for i in range(header.n_sections):
        at = HEADER_SIZE + i * SECTION_SIZE
        sec = L.edgeq_section_t.from_buffer_copy(buf[at : at + SECTION_SIZE])
        if sec.kind == L.SECTION_SIGNATURE:
            if sec.size != SIGNATURE_SIZE:
                raise SignatureError(f"signature section is {sec.size} bytes, expected {SIGNATURE_SIZE}", "malformed")
            return _Place(at, sec.offset)
    return None


def signed_message(buf: bytes | bytearray, place: _Place) -> bytes:
    """The file with header_crc/file_crc, the SIGNATURE entry's crc32 and the 64 signature bytes zeroed."""
    m = bytearray(buf)
    crc_at = L.edgeq_header_t.header_crc.offset
    m[crc_at : crc_at + 8] = bytes(8)
    m[place.entry_at + CRC_FIELD_AT : place.entry_at + CRC_FIELD_AT + 4] = bytes(4)
    sig = place.payload_at + SIG_BYTES_AT
    m[sig : sig + 64] = bytes(64)
    return bytes(m)


def _add_signature_section(buf: bytearray) -> _Place:
    """Appends an empty SIGNATURE section and its table entry (the table's padding has room for one)."""
    header = L.edgeq_header_t.from_buffer_copy(buf[:HEADER_SIZE])
    table_end = HEADER_SIZE + header.n_sections * SECTION_SIZE
    first = min(L.edgeq_section_t.from_buffer_copy(buf, HEADER_SIZE + i * SECTION_SIZE).offset
                for i in range(header.n_sections))
    if table_end + SECTION_SIZE > first:
        raise BlobError("no room for a signature entry in the section table: re-pack the blob with this edgeq")
    payload_at = -(-len(buf) // L.ALIGN) * L.ALIGN
    buf += bytes(payload_at + SIGNATURE_SIZE - len(buf))
    entry = L.edgeq_section_t(kind=L.SECTION_SIGNATURE, offset=payload_at, size=SIGNATURE_SIZE)
    buf[table_end : table_end + SECTION_SIZE] = bytes(entry)
    header.n_sections += 1
    header.flags |= L.FLAG_SIGNED
    header.file_size = len(buf)
    buf[:HEADER_SIZE] = bytes(header)
    return _Place(table_end, payload_at)


def sign_bytes(buf: bytearray, key: Ed25519PrivateKey) -> None:
    """Signs a valid blob's bytes in place: adds (or refills) the SIGNATURE section, then restamps the CRCs."""
    place = _find_signature(buf) or _add_signature_section(buf)
    payload = L.edgeq_signature_t(algorithm=L.SIG_ED25519)
    payload.key_id[:] = key_id(_raw_public(key.public_key()))
    buf[place.payload_at : place.payload_at + SIGNATURE_SIZE] = bytes(payload)
    signature = key.sign(signed_message(buf, place))
    at = place.payload_at + SIG_BYTES_AT
    buf[at : at + 64] = signature
    entry = L.edgeq_section_t.from_buffer_copy(buf[place.entry_at : place.entry_at + SECTION_SIZE])
    entry.crc32 = zlib.crc32(buf[place.payload_at : place.payload_at + SIGNATURE_SIZE]) & 0xFFFFFFFF
    buf[place.entry_at : place.entry_at + SECTION_SIZE] = bytes(entry)
    seal(buf)


def sign_blob(path: str | os.PathLike, key_path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Validates the blob, signs it and rewrites it atomically (to `out`, default in place)."""
    path = Path(path)
    key = load_private_key(key_path)
    read_blob(path)  # never sign a corrupt blob
    buf = bytearray(path.read_bytes())
    sign_bytes(buf, key)
    target = Path(out) if out else path
    atomic_write(target, buf)
    target.chmod(path.stat().st_mode & 0o777)
    read_blob(target)
    return target


def verify_bytes(buf: bytes | bytearray, public_key: bytes, name: str = "blob") -> bytes:
    """Checks the signature of already-validated blob bytes; returns the key id. Raises SignatureError."""
    place = _find_signature(buf)
    if place is None:
        raise SignatureError(f"{name}: blob is not signed (sign it with `edgeq sign BLOB --key KEY`)", "unsigned")
    payload = L.edgeq_signature_t.from_buffer_copy(buf[place.payload_at : place.payload_at + SIGNATURE_SIZE])
    if payload.algorithm != L.SIG_ED25519:
        raise SignatureError(f"{name}: unknown signature algorithm {payload.algorithm}", "malformed")
    want = key_id(public_key)
    if bytes(payload.key_id) != want:
        raise SignatureError(f"{name}: signed by another key (key id {bytes(payload.key_id).hex()}), not by the given "
                             f"public key (key id {want.hex()})", "wrong_key")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(bytes(payload.signature), signed_message(buf, place))
    except InvalidSignature:
        raise SignatureError(f"{name}: signature does not verify: the blob was modified after it was signed",
                             "invalid") from None
    return want


def verify_blob(path: str | os.PathLike, public_key: str | os.PathLike | bytes, require: bool = True):
    """Checks header, section table and CRCs, then the signature -- before any tensor or op is parsed, as
    the C runtime does -- then validates the rest (read_blob); returns the Blob.

    require=False accepts an unsigned blob (a signed one must still verify), like the runtime's options."""
    path = Path(path)
    key = load_public_key(public_key)
    view = _open_view(path)
    _sections(view, _header(view))
    if require or _find_signature(view) is not None:
        verify_bytes(bytes(view), key, str(path))
    blob = read_blob(path)
    blob.checks["signature"] = "ok" if L.SECTION_SIGNATURE in blob.sections else "unsigned"
    return blob
