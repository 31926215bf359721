"""The encrypted package for transfer: one tar of the extract, the exports, the codebook and a sha256 manifest, encrypted with age.

The tar is produced as a stream (``TarStream``) and encrypted as it is produced
(``pyrage.encrypt_io``) to the X25519 public keys the approval lists as ``recipients``
(the remote-access environment's), straight into a hidden file that is renamed to
``packages/<project>.tar.age`` when complete: no plaintext tar ever exists on disk.
Every file is hashed again while it is streamed and must match the sha256 the manifest
(``SHA256SUMS``, in ``sha256sum`` format) and the codebook give; a file that changed
stops the package.

Inside, everything is under ``<project>/``: the extract, ``exports/`` and ``SHA256SUMS``,
so ``age -d -i identity.txt <project>.tar.age | tar -x`` then
``sha256sum -c SHA256SUMS`` in ``<project>/`` checks it. ``open_package`` does the same
in Python, without a plaintext tar either.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyrage

from ..files import BLOCK_BYTES, sha256_of, sync_directory
from ..paths import PACKAGE_MANIFEST, PRIVATE_DIR, PRIVATE_FILE

RECORD = tarfile.RECORDSIZE


class PackageError(ValueError):
    """A package that cannot be made or opened; the message says which file, field or identity."""


@dataclass(frozen=True)
class Member:
    """One file of the package: where it is inside (``name``), where it is read from, and its sha256."""

    name: str
    source: Path
    sha256: str


def parse_recipients(recipients: list[str], where: str) -> list:
    keys = []
    for number, text in enumerate(recipients):
        try:
            keys.append(pyrage.x25519.Recipient.from_str(text))
        except pyrage.RecipientError as error:
            raise PackageError(f"{where}: field recipients[{number}]: {text[:12]}… is not an age X25519 public key ({error}); "
                               "ask the remote-access team for the key `age-keygen -y` prints") from None
    return keys


def manifest_text(members: list[Member]) -> bytes:
    """``sha256sum`` format: one ``<sha256>  <path>`` line per file, paths relative to the package's folder."""
    return "".join(f"{m.sha256}  {m.name}\n" for m in members).encode("utf-8")


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, PRIVATE_FILE, mtime, tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def tar_chunks(root: str, members: list[Member], mtime: int) -> Iterator[bytes]:
    """The tar archive, a block at a time: each file checked against its sha256 as it goes, then the manifest."""
    written = 0
    for member in members:
        with member.source.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header = _header(f"{root}/{member.name}", size, mtime)
            yield header
            digest, sent = hashlib.sha256(), 0
            for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
                digest.update(block)
                sent += len(block)
                yield block
        if sent != size or digest.hexdigest() != member.sha256:
            raise PackageError(f"{member.source} changed while it was packaged; nothing was published, build the exports again")
        yield b"\0" * (-size % tarfile.BLOCKSIZE)
        written += len(header) + size + (-size % tarfile.BLOCKSIZE)
    manifest = manifest_text(members)
    header = _header(f"{root}/{PACKAGE_MANIFEST}", len(manifest), mtime)
    yield header + manifest + b"\0" * (-len(manifest) % tarfile.BLOCKSIZE)
    written += len(header) + len(manifest) + (-len(manifest) % tarfile.BLOCKSIZE) + 2 * tarfile.BLOCKSIZE
    yield b"\0" * (2 * tarfile.BLOCKSIZE + (-written % RECORD))


class TarStream(io.RawIOBase):
    """A readable stream over ``tar_chunks``: what ``pyrage.encrypt_io`` reads from."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.pending = chunks, memoryview(b"")
        self.error: BaseException | None = None  # what stopped the stream (pyrage reports only its text)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            try:
                chunk = next(self.chunks, None)
            except BaseException as error:
                self.error = error
                raise
            if chunk is None:
                return 0
            self.pending = memoryview(chunk)
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count


def write_package(target: Path, partial: Path, root: str, members: list[Member], recipients: list, mtime: int) -> Path:
    """Encrypt the package to ``recipients`` into ``partial``, then rename it to ``target`` (0600)."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        stream = TarStream(tar_chunks(root, members, mtime))
        with os.fdopen(descriptor, "wb") as handle:
            try:
                pyrage.encrypt_io(stream, handle, recipients)
            except pyrage.EncryptError as error:
                raise (stream.error or PackageError(f"{target}: encryption failed: {error}")) from None
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    sync_directory(target.parent)
    return target


def _decrypt(package: Path, identities: list, pipe_out: int, errors: list) -> None:
    try:
        with package.open("rb") as source, os.fdopen(pipe_out, "wb") as sink:
            pyrage.decrypt_io(source, sink, identities)
    except BaseException as error:  # reported by open_package once the reader stops
        errors.append(error)


def open_package(package: Path, identity_file: Path, into: Path) -> Path:
    """Decrypt and unpack ``package`` into ``into`` with the age identity in ``identity_file``, then check every file
    against ``SHA256SUMS``; return the package's folder. The tar is decrypted through a pipe, never written whole."""
    lines = [line.strip() for line in Path(identity_file).read_text().splitlines()]
    try:
        identities = [pyrage.x25519.Identity.from_str(line) for line in lines if line.startswith("AGE-SECRET-KEY-")]
    except pyrage.IdentityError as error:
        raise PackageError(f"{identity_file}: not an age identity file ({error})") from None
    if not identities:
        raise PackageError(f"{identity_file}: no AGE-SECRET-KEY-1... line; give the file age-keygen wrote")
    into.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    pipe_in, pipe_out = os.pipe()
    errors: list[BaseException] = []
    worker = threading.Thread(target=_decrypt, args=(package, identities, pipe_out, errors))
    worker.start()
    names = []
    try:
        with os.fdopen(pipe_in, "rb") as stream:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as archive:
                    for member in archive:
                        names.append(member.name)
                        archive.extract(member, into, filter="data")
            except tarfile.ReadError:
                pass  # the decryption failed: its error says why
            stream.read()  # drain, so the decrypting thread can finish
    finally:
        worker.join()
    if errors:
        if isinstance(errors[0], pyrage.DecryptError):
            raise PackageError(f"{package} cannot be opened with {identity_file}: it was not encrypted to this identity "
                               f"({errors[0]}); use the remote-access environment's identity") from None
        raise PackageError(f"{package}: {errors[0]}") from None
    roots = {name.split("/", 1)[0] for name in names}
    if len(roots) != 1:
        raise PackageError(f"{package}: expected one folder inside, found {sorted(roots)}")
    folder = into / roots.pop()
    verify_manifest(folder)
    return folder


def verify_manifest(folder: Path) -> None:
    """Every file listed in ``SHA256SUMS`` is there with its sha256, and nothing else is."""
    listed = {}
    for line in (folder / PACKAGE_MANIFEST).read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {PACKAGE_MANIFEST}
    if present != set(listed):
        raise PackageError(f"{folder}: files {sorted(present ^ set(listed))} are not as {PACKAGE_MANIFEST} lists them")
    for name, digest in listed.items():
        if sha256_of(folder / name) != digest:
            raise PackageError(f"{folder / name}: sha256 differs from {PACKAGE_MANIFEST}; the package is damaged")
