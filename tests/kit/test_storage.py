import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest

from backend.kit.storage import FileNotStored, FileStore, LocalFileStore, StoredFile

PDF_BYTES = b"%PDF-1.4\n...\n%%EOF\n"


@pytest.fixture
def store(tmp_path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def _all_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


class TestPutAndRead:
    async def test_a_file_put_is_read_back_with_its_size_and_checksum(self, store):
        stored = await store.put(PDF_BYTES, content_type="application/pdf")
        assert isinstance(stored, StoredFile)
        assert stored.size == len(PDF_BYTES)
        assert stored.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
        assert stored.content_type == "application/pdf"
        assert await store.read(stored.key) == PDF_BYTES
        assert await store.exists(stored.key)

    async def test_the_local_store_is_a_file_store(self, store):
        store_as_protocol: FileStore = store
        assert (await store_as_protocol.put(b"x", content_type="image/png")).size == 1

    async def test_keys_are_128_random_bits_in_two_level_shards(self, store):
        stored = await store.put(PDF_BYTES, content_type="application/pdf")
        assert len(stored.key) == 32 and int(stored.key, 16) >= 0
        [path] = _all_files(store.root)
        assert path.relative_to(store.root).parts == (stored.key[:2], stored.key[2:4], stored.key)

    async def test_the_same_bytes_twice_get_two_keys(self, store):
        first = await store.put(PDF_BYTES, content_type="application/pdf")
        second = await store.put(PDF_BYTES, content_type="application/pdf")
        assert first.key != second.key and first.sha256 == second.sha256
        assert len(_all_files(store.root)) == 2

    async def test_the_name_the_client_gave_is_never_part_of_a_key_or_a_path(self, store):
        client_name = "张三身份证150921199001011233.pdf"
        stored = await store.put(client_name.encode() + PDF_BYTES, content_type="application/pdf")
        for part in ("张三", "150921", ".pdf", "身份证"):
            assert part not in stored.key
            assert all(part not in str(path) for path in store.root.rglob("*"))

    async def test_only_the_servers_user_can_read_files_and_directories(self, store):
        stored = await store.put(PDF_BYTES, content_type="application/pdf")
        path = store.root / stored.key[:2] / stored.key[2:4] / stored.key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for directory in (store.root, path.parent, path.parent.parent):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700

    async def test_no_temporary_file_is_left_after_a_put(self, store):
        for _ in range(5):
            await store.put(PDF_BYTES, content_type="application/pdf")
        assert all(not path.name.startswith(".put-") for path in store.root.rglob("*"))
        assert len(_all_files(store.root)) == 5

    async def test_an_empty_file_is_stored_as_empty(self, store):
        # refusing empty uploads is kit.filetypes' job; the store keeps what it is given
        stored = await store.put(b"", content_type="application/pdf")
        assert await store.read(stored.key) == b""


class TestFailedWrites:
    @pytest.mark.parametrize("failing", ["fsync", "replace"])
    async def test_a_write_that_fails_leaves_nothing_behind(self, store, monkeypatch, failing):
        first = await store.put(b"first", content_type="image/png")

        def full_disk(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, failing, full_disk)
        with pytest.raises(OSError):
            await store.put(PDF_BYTES, content_type="application/pdf")
        monkeypatch.undo()
        # neither a temporary file nor a half file under a key: only the earlier file is there
        assert [path.name for path in _all_files(store.root)] == [first.key]

    async def test_a_root_that_cannot_be_created_fails_the_put(self, tmp_path):
        blocker = tmp_path / "not-a-directory"
        blocker.write_bytes(b"")
        with pytest.raises(OSError):
            await LocalFileStore(blocker / "files").put(PDF_BYTES, content_type="application/pdf")


class TestDeleteAndExists:
    async def test_a_deleted_file_is_gone(self, store):
        stored = await store.put(PDF_BYTES, content_type="application/pdf")
        await store.delete(stored.key)
        assert not await store.exists(stored.key)
        with pytest.raises(FileNotStored):
            await store.read(stored.key)

    async def test_deleting_twice_or_a_key_never_stored_is_fine(self, store):
        stored = await store.put(PDF_BYTES, content_type="application/pdf")
        await store.delete(stored.key)
        await store.delete(stored.key)
        await store.delete("0" * 32)

    async def test_reading_a_key_never_stored_is_file_not_stored(self, store):
        with pytest.raises(FileNotFoundError):
            await store.read("ab" * 16)


INVALID_KEYS = ["", "../../etc/passwd", "ab/cd/" + "a" * 32, "/" + "a" * 32, "A" * 32, "a" * 31, "a" * 33,
                "a" * 31 + "g", "a" * 32 + "\n", "..", "./" + "a" * 30, "a" * 16 + "\x00" + "a" * 15]


class TestInvalidKeys:
    @pytest.mark.parametrize("key", INVALID_KEYS)
    async def test_a_key_of_another_shape_is_refused_before_the_disk_is_touched(self, tmp_path, key):
        store = LocalFileStore(tmp_path / "files")
        with pytest.raises(FileNotStored):
            await store.read(key)
        with pytest.raises(FileNotStored):
            await store.delete(key)
        assert await store.exists(key) is False
        assert not (tmp_path / "files").exists()   # nothing was created or looked up under root

    async def test_a_path_outside_the_root_is_not_read_even_if_it_exists(self, tmp_path):
        secret = tmp_path / "secret"
        secret.write_bytes(b"jwt")
        store = LocalFileStore(tmp_path / "files")
        await store.put(b"x", content_type="image/png")
        with pytest.raises(FileNotStored):
            await store.read("../secret")
