"""The package format, both sides: minisign signatures and age encryption, streamed.

Sender: the files of an extract are written to a directory, ``manifest.json`` lists every other
file with its SHA-256, ``manifest.json.minisig`` signs the manifest with the hospital's Ed25519
key in the minisign format (py-minisign, prehashed ``ED`` signatures, which ``minisign -V``
verifies), and the directory is streamed as a tar archive straight into the ``age`` encryptor
(pyrage) for the recipient's X25519 key — nothing is held in memory whole.

Receiver (:func:`receive`): decrypt (streamed), unpack into a scratch directory refusing links
and paths outside it, verify the signature and its trusted comment, check every hash and that
no file is missing or extra; only then move the files to the output directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import minisign
import pyrage
from minisign.algo import CksumAlgorithm, KDFAlgorithm, SignatureAlgorithm
from minisign.secret_key import KeynumSK
from nacl.signing import SigningKey

from studies.extracts.errors import PackageError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.minisig"
CHUNK = 1 << 20


def key_id(signing_key: SigningKey) -> bytes:
    return hashlib.sha256(bytes(signing_key.verify_key)).digest()[:8]


def _secret_key(signing_key: SigningKey) -> minisign.SecretKey:
    """The hospital's Ed25519 key as an (unencrypted) minisign secret key."""
    sk = minisign.SecretKey(
        _untrusted_comment=None, _signature_algorithm=SignatureAlgorithm.PURE_ED_DSA,
        _kdf_algorithm=KDFAlgorithm.NONE, _cksum_algorithm=CksumAlgorithm.BLAKE2b,
        _kdf_salt=bytes(32), _kdf_opslimit=0, _kdf_memlimit=0,
        _keynum_sk=KeynumSK(key_id=bytearray(key_id(signing_key)),
                            secret_key=bytearray(bytes(signing_key)),
                            public_key=bytearray(bytes(signing_key.verify_key)),
                            checksum=bytearray(32)))
    sk._update_checksum()
    return sk


def public_key_text(signing_key: SigningKey) -> str:
    """The hospital's public key as a minisign ``.pub`` file (for ``minisign -p``)."""
    pk = _secret_key(signing_key).get_public_key()
    kid = int.from_bytes(key_id(signing_key), "little")
    return f"untrusted comment: minisign public key {kid:016X}\n{pk.to_base64().decode()}\n"


def sign(data: bytes, signing_key: SigningKey, *, trusted_comment: str) -> bytes:
    """A minisign signature file over ``data`` (prehashed, as minisign 0.8+ makes)."""
    sig = _secret_key(signing_key).sign(
        data, prehash=True, trusted_comment=trusted_comment,
        untrusted_comment="signature from the hospital EDC extract key")
    return bytes(sig) + b"\n"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


class TarStream(io.RawIOBase):
    """A tar archive of ``root/names``, then of ``more`` (member name, file) pairs (PAX format,
    ``extract/`` prefix) produced as it is read: headers from :mod:`tarfile`, file bytes read
    straight into the caller's buffer. No thread, no pipe, no copy of the data on disk; memory
    stays at one buffer."""

    def __init__(self, root: Path, names: Iterable[str],
                 more: Iterable[tuple[str, Path]] = ()) -> None:
        super().__init__()
        self._parts = self._generate([*((n, root / n) for n in names), *more])
        self._bytes = memoryview(b"")
        self._file: io.BufferedReader | None = None
        self._left = 0

    @staticmethod
    def _generate(members: Iterable[tuple[str, Path]]
                  ) -> Iterator[bytes | tuple[io.BufferedReader, int]]:
        total = 0
        for name, path in members:
            info = tarfile.TarInfo(f"extract/{name}")
            st = path.stat()
            info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o644
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            yield header
            with open(path, "rb") as fh:
                yield (fh, info.size)
            pad = (-info.size) % tarfile.BLOCKSIZE
            yield b"\0" * pad
            total += len(header) + info.size + pad
        end = 2 * tarfile.BLOCKSIZE
        total += end
        yield b"\0" * (end + (-total) % tarfile.RECORDSIZE)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        while True:
            if self._bytes:
                n = min(len(out), len(self._bytes))
                out[:n] = self._bytes[:n]
                self._bytes = self._bytes[n:]
                return n
            if self._file is not None and self._left:
                n = self._file.readinto(out[:min(len(out), self._left)])
                if not n:
                    raise PackageError("a file changed size while it was packed")
                self._left -= n
                return n
            part = next(self._parts, None)
            if part is None:
                return 0
            if isinstance(part, bytes):
                self._bytes = memoryview(part)
                self._file = None
            else:
                self._file, self._left = part


def encrypt_directory(root: Path, names: list[str], out: Path, recipient: str) -> str:
    """Stream ``root/names`` as a tar archive (:class:`TarStream`) into age for
    ``recipient``; write ``out`` and return its SHA-256."""
    rec = pyrage.x25519.Recipient.from_str(recipient)
    with io.BufferedReader(TarStream(root, names), CHUNK) as r, open(out, "wb") as w:
        pyrage.encrypt_io(r, w, [rec])
    return sha256_file(out)


# ── The receiving side ────────────────────────────────────────────────────────────────────────

def read_identity(text: str) -> Any:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                return pyrage.x25519.Identity.from_str(line)
            except Exception:
                raise PackageError("identity: not a valid age secret key") from None
    raise PackageError("identity: no AGE-SECRET-KEY line found (made by age-keygen)")


def _safe_extract(tar_path: Path, into: Path) -> None:
    with tarfile.open(tar_path, mode="r:") as tar:
        for m in tar:
            name = m.name
            if not name.startswith("extract/") or ".." in Path(name).parts or name.startswith(
                    "/"):
                raise PackageError(f"package: unexpected path {name!r}")
            if not m.isfile():
                raise PackageError(f"package: {name!r} is not a regular file")
            rel = Path(name).relative_to("extract")
            dest = into / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            with open(dest, "wb") as fh:
                shutil.copyfileobj(src, fh, CHUNK)


def verify_directory(root: Path, signer_pub: str) -> dict[str, Any]:
    """Check the signature over ``manifest.json``, its trusted comment, and every file."""
    man_path, sig_path = root / MANIFEST, root / SIGNATURE
    if not man_path.exists() or not sig_path.exists():
        raise PackageError("package: manifest.json or manifest.json.minisig is missing")
    data = man_path.read_bytes()
    try:
        pub = minisign.PublicKey.from_bytes(signer_pub.encode())
    except Exception:
        raise PackageError("signer: not a minisign public key file") from None
    try:
        sig = minisign.Signature.from_bytes(sig_path.read_bytes())
        pub.verify(data, sig)
    except Exception as e:
        raise PackageError(f"signature: manifest.json does not verify with the hospital's key "
                           f"({e.__class__.__name__})") from None
    digest = hashlib.sha256(data).hexdigest()
    comment = dict(p.split(":", 1) for p in sig.trusted_comment.split() if ":" in p)
    if comment.get("manifest_sha256") != digest:
        raise PackageError("signature: the trusted comment names another manifest")
    manifest = json.loads(data)
    listed = {f["name"]: f for f in manifest["files"]}
    if comment.get("extract") != manifest.get("extract_id"):
        raise PackageError("signature: the trusted comment names another extract")
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    extra = present - set(listed) - {MANIFEST, SIGNATURE}
    if extra:
        raise PackageError(f"file {sorted(extra)[0]}: not listed in the manifest")
    for name, f in sorted(listed.items()):
        if name not in present:
            raise PackageError(f"file {name}: missing")
        if sha256_file(root / name) != f["sha256"]:
            raise PackageError(f"file {name}: SHA-256 does not match the signed manifest")
    return manifest  # type: ignore[no-any-return]


def receive(package: Path, *, identity: str, signer_pub: str, out: Path) -> dict[str, Any]:
    """Decrypt, verify and unpack a package; refuse it (raising :class:`PackageError`, naming
    what failed) if any byte was changed. ``out`` must not exist or be empty."""
    ident = read_identity(identity)
    if out.exists() and any(out.iterdir()):
        raise PackageError(f"out: {out} is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".edc-receive-") as tmp:
        tar_path = Path(tmp) / "package.tar"
        try:
            with open(package, "rb") as r, open(tar_path, "wb") as w:
                pyrage.decrypt_io(r, w, [ident])
        except FileNotFoundError:
            raise PackageError(f"package: {package} not found") from None
        except Exception as e:
            raise PackageError(f"decryption: the package does not decrypt with this identity "
                               f"or was altered ({e})") from None
        files = Path(tmp) / "files"
        files.mkdir()
        try:
            _safe_extract(tar_path, files)
        except tarfile.TarError as e:
            raise PackageError(f"package: not a valid archive ({e})") from None
        manifest = verify_directory(files, signer_pub)
        out.mkdir(parents=True, exist_ok=True)
        for p in sorted(files.rglob("*")):
            if p.is_file():
                dest = out / p.relative_to(files)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(p), dest)
    return manifest
