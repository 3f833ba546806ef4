"""Uploaded files (application materials, photos of documents) behind one small interface.

The store keeps bytes under keys it makes up; what a file is and whose it is (name shown to people,
type, owner, case) lives in the caller's rows. LocalFileStore keeps them on the local disk; an
S3-compatible store can take its place behind the same Protocol when there are several machines.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["FileStore", "StoredFile", "LocalFileStore", "FileNotStored"]

# 128 random bits as 32 hex characters: a key cannot be guessed, and says nothing about the file,
# its owner or the name the client gave it (names carry ID numbers: "张三身份证150921....jpg")
_KEY_BYTES = 16
_KEY = re.compile(r"[0-9a-f]{32}")
_FILE_MODE = 0o600
_DIR_MODE = 0o700


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str          # hex, kept with the caller's row: a file read back can be checked against it
    content_type: str


class FileNotStored(FileNotFoundError):
    """No file under this key, or a key this store never makes: the caller answers 404 for both."""


class FileStore(Protocol):
    async def put(self, data: bytes, *, content_type: str) -> StoredFile: ...

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None:
        """Idempotent: deleting a key with no file is not an error."""
        ...

    async def exists(self, key: str) -> bool: ...


class LocalFileStore:
    """Files under `root` (outside anything served over HTTP), as root/ab/cd/abcd... with the
    two-level shards keeping directories small. Only this process's user can read them."""

    def __init__(self, root: Path):
        self.root = Path(root)

    async def put(self, data: bytes, *, content_type: str) -> StoredFile:
        key = secrets.token_hex(_KEY_BYTES)
        # blocking IO (and hashing 10 MiB) runs in a thread so the event loop keeps serving. A put
        # cancelled while its thread runs can leave a file no row names: never a half file, and one
        # that a sweep of unreferenced keys can remove
        digest = await asyncio.to_thread(self._write, self._path(key), data)
        return StoredFile(key=key, size=len(data), sha256=digest, content_type=content_type)

    async def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise FileNotStored(key) from None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        if not _KEY.fullmatch(key):
            return False
        return await asyncio.to_thread(self._path(key).is_file)

    def _path(self, key: str) -> Path:
        # the key becomes a path only after this check: no "..", no separators, no absolute path
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise FileNotStored(key)
        return self.root / key[:2] / key[2:4] / key

    def _write(self, path: Path, data: bytes) -> str:
        self._make_dirs(path.parent)
        # the bytes go to a temporary file in the key's own directory, then are renamed over the key
        # in one step (same file system, so os.replace is atomic): a crash or a full disk leaves a
        # stray temporary file at worst, never a half file under a real key
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".put-", suffix=".part")  # mode 0o600
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, _FILE_MODE)
            os.replace(temporary, path)   # a clash of 128 random bits is not a case to handle
        except BaseException:   # re-raised: KeyboardInterrupt or a full disk alike leave no temporary file
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_directory(path.parent)   # the rename itself survives a power cut
        return hashlib.sha256(data).hexdigest()

    def _make_dirs(self, directory: Path) -> None:
        # one by one so that every level gets 0o700 (mkdir(parents=True) gives the parents default modes)
        for level in (self.root, directory.parent, directory):
            level.mkdir(mode=_DIR_MODE, exist_ok=True, parents=level == self.root)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
