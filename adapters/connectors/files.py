"""The files root: the one folder file sources are read from, and how a file there is opened.

Every file connector (csv, parquet, jsonl) reads through `FilesRoot`, so the sandbox's rules
live in one place: a path is relative, has no `..`, resolves (symlinks followed) under the root
and names no file of the registry's own; the file is opened once, and the opened file itself is
checked again (where it really is, that it is a regular file with a single link) before a byte
of it is read. Nothing opens it a second time by name.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio.to_thread

from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable, FieldError, InvalidConnection

_O_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class FilesRoot:
    """Paths under `root`, minus the registry's own files (`store_files`, under any name)."""

    def __init__(self, root: Path | str, store_files: Iterable[Path | str] = ()) -> None:
        self.root = Path(root)
        self.store_files = tuple(Path(p) for p in store_files)

    async def validated(
        self, fields: Sequence[ConnectionField], connection: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A file connector's connection checked, its `path` under this root (on a thread: the
        path's checks look at the file system, which may be slow to answer)."""
        return await anyio.to_thread.run_sync(
            self._validated, fields, connection, abandon_on_cancel=True
        )

    def _validated(
        self, fields: Sequence[ConnectionField], connection: Mapping[str, Any]
    ) -> dict[str, Any]:
        checked = check_connection(fields, connection)
        if problem := self.path_problem(checked["path"]):
            raise InvalidConnection([FieldError("connection.path", problem)])
        return checked

    def path_problem(self, path: str) -> str | None:
        """Why this path may not be read, or None (a file that does not exist yet may)."""
        if os.path.isabs(path):
            return "must be relative to the files root"
        if ".." in Path(path).parts:
            return "must not contain '..'"
        root = self.root.resolve()
        try:
            resolved = (root / path).resolve()
        except (OSError, RuntimeError):  # a symlink loop
            return "cannot be resolved"
        if resolved == root:
            return "must name a file under the files root"
        if not resolved.is_relative_to(root):
            return "leads outside the files root"
        if self.store_file(resolved):
            return "is one of the registry's own files"
        return None

    def store_file(self, path: Path, status: os.stat_result | None = None) -> bool:
        """Whether this path, or the file it names (by device and inode: under any name), is one
        of the store's own files; `status`, when given, is that of the file already opened."""
        if status is None:
            try:
                status = path.stat()
            except OSError:
                status = None
        resolved = path.resolve()
        for own in self.store_files:
            if resolved == own.resolve():
                return True
            try:
                own_status = own.stat()
            except OSError:  # not made yet
                continue
            if status is not None and (status.st_dev, status.st_ino) == (
                own_status.st_dev,
                own_status.st_ino,
            ):
                return True
        return False

    def open(self, path: str) -> tuple[int, os.stat_result]:
        """A file descriptor of the checked, opened file and its status; the caller closes it.

        Raises `BackendUnavailable`: `permission_denied` (outside the root, a hard link, a
        registry file, not readable), `file_not_found`, `unreadable` (not a regular file).
        """
        if problem := self.path_problem(path):
            raise BackendUnavailable("permission_denied", f"{path!r} {problem}")
        try:
            fd = os.open(self.root / path, _O_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            raise BackendUnavailable(
                "file_not_found", f"no file {path!r} in the files root"
            ) from None
        except PermissionError:
            raise BackendUnavailable("permission_denied", f"{path!r} may not be read") from None
        except OSError as exc:
            raise BackendUnavailable("unreadable", f"{path!r}: {exc.strerror}") from None
        try:
            return fd, self._checked(fd, path)
        except BaseException:
            os.close(fd)
            raise

    def _checked(self, fd: int, path: str) -> os.stat_result:
        """The opened file's status, once it is known to be one this root may read."""
        try:
            opened = _opened_path(fd)
            if opened is not None and not opened.is_relative_to(self.root.resolve()):
                raise BackendUnavailable("permission_denied", f"{path!r} leads outside the root")
            status = os.fstat(fd)
        except OSError as exc:
            raise BackendUnavailable("unreadable", f"{path!r}: {exc.strerror}") from None
        if not stat.S_ISREG(status.st_mode):
            raise BackendUnavailable("unreadable", f"{path!r} is not a regular file")
        if status.st_nlink > 1:
            raise BackendUnavailable(
                "permission_denied", f"{path!r} has more than one link (a hard link)"
            )
        if self.store_file(self.root / path, status):
            raise BackendUnavailable("permission_denied", f"{path!r} may not be read")
        return status

    def read_head(self, path: str, size: int) -> tuple[bytes, bool]:
        """At most `size` bytes from the start of the file, and whether they are all of it."""
        fd, _ = self.open(path)
        try:
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read(size + 1)
        except OSError as exc:
            raise BackendUnavailable("unreadable", f"{path!r}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return data[:size], len(data) <= size


def _opened_path(fd: int) -> Path | None:
    """Where an open file really is, symlinks resolved, where the OS says (Linux's /proc)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None
