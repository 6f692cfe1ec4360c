"""A few bytes in shared memory that every process of one host sees move: a store's change mark.

The SQLite store writes a new random mark here after each write that
replaces or removes a value, and the guard's token cache reads it on every
hit (:class:`~oauth_middleware.stores.base.ChangeStore`). The file is mapped
into memory (``mmap``, shared), so a read is a memory read, not a system
call nor a query: asking SQLite's ``PRAGMA data_version`` instead cost about
3 µs, most of a cached guard request.

A mark is random rather than a count: two processes writing at once cannot
lose a change the way a read-increment-write count could (each writes a new
value, and whatever a reader sees afterwards differs from what it saw
before). A read that races a write may see a mix of the two marks, which only
reads as one more change.
"""

from __future__ import annotations

import mmap
import os
import threading

from ..errors import StoreUnavailable

__all__ = ["ChangeFile"]

#: Bytes in a mark: a collision of two random marks is out of reach.
MARK_SIZE = 8


class ChangeFile:
    """The change mark kept in the file at ``path``, created (mode 0600) and mapped on first use.

    :param path: the file; made next to the store's database.

    Example::

        marks = ChangeFile("/var/lib/oauth/oauth.db-changes")
        before = marks.read()
        marks.bump()  # in any process
        assert marks.read() != before
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()

    def read(self) -> bytes:
        """The current mark.

        :raises StoreUnavailable: the file cannot be created or mapped.
        """
        mapped = self._map if self._map is not None else self._open()
        try:
            return mapped[:MARK_SIZE]
        except ValueError:
            # Closed by another thread meanwhile (close()): map it again.
            return self._open()[:MARK_SIZE]

    def bump(self) -> None:
        """Write a new mark, seen at once by every process that maps the file.

        :raises StoreUnavailable: the file cannot be created or mapped.
        """
        mark = os.urandom(MARK_SIZE)
        mapped = self._map if self._map is not None else self._open()
        try:
            mapped[:MARK_SIZE] = mark
        except ValueError:
            self._open()[:MARK_SIZE] = mark

    def close(self) -> None:
        """Unmap the file (its descriptor with it); the next read or bump maps it again."""
        with self._lock:
            mapped, self._map = self._map, None
        if mapped is not None:
            mapped.close()

    def _open(self) -> mmap.mmap:
        with self._lock:
            if self._map is not None and not self._map.closed:
                return self._map
            try:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    if os.fstat(descriptor).st_size < MARK_SIZE:
                        # Growing only: two processes doing this at once agree on the size.
                        os.ftruncate(descriptor, MARK_SIZE)
                    # The mapping keeps a descriptor of its own.
                    self._map = mmap.mmap(descriptor, MARK_SIZE)
                finally:
                    os.close(descriptor)
            except (OSError, ValueError) as exc:
                raise StoreUnavailable(
                    f"sqlite: cannot map {self.path}: {getattr(exc, 'strerror', None) or exc}"
                ) from None
            return self._map
