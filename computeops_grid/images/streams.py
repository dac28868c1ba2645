"""Read a layer blob once: hash the compressed bytes and inflate them in the same pass.

:class:`LayerStream` hands ``tarfile`` the uncompressed tar of a gzip layer (inflated here
with zlib in 1 MiB steps rather than tarfile's 10 KiB ones, every output step bounded so a
gzip bomb cannot fill memory), while the sha256 of the blob as stored is computed from the
same reads; :meth:`LayerStream.check` reads what tarfile left (padding after the tar end)
and compares the digest. A plain tar is passed through; other compressions (bzip2, xz) are
passed through compressed for tarfile to detect; zstd is refused with a hint.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import IO

from computeops_grid.images.errors import ImageError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_IN = 1 << 20  # compressed bytes per read
_OUT = 4 << 20  # most uncompressed bytes one inflate step may produce


class LayerStream:
    """A file-like (``read`` only) uncompressed view of a layer blob whose digest is checked."""

    def __init__(self, raw: IO[bytes], digest: str) -> None:
        self.raw = raw
        self.digest = digest
        self.hash = hashlib.sha256()
        self._buf = b""
        self._pos = 0
        self._eof = False
        head = self._raw_read(_IN)
        if head.startswith(ZSTD_MAGIC):
            raise ImageError(
                f"layer {digest} is zstd-compressed, which this publisher does not read",
                hint="convert it: skopeo copy --dest-compress-format gzip SRC oci-archive:FILE",
            )
        self._inflate: zlib._Decompress | None = None
        self._pending = b""  # compressed input not yet given to zlib
        if head.startswith(GZIP_MAGIC):
            self._inflate = zlib.decompressobj(wbits=31)
            self._pending = head
        else:
            self._buf = head

    def _raw_read(self, size: int) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            parts = [self._buf[self._pos :]]
            while self._fill():
                parts.append(self._buf)
            self._buf, self._pos = b"", 0
            return b"".join(parts)
        end = self._pos + size
        if end <= len(self._buf):
            data = self._buf[self._pos : end]
            self._pos = end
            return data
        parts = [self._buf[self._pos :]]
        got = len(parts[0])
        while got < size and self._fill():
            take = self._buf[: size - got]
            parts.append(take)
            got += len(take)
            self._pos = len(take)
        return b"".join(parts)

    def _fill(self) -> bool:
        """Replace the buffer with the next uncompressed bytes; False at the end."""
        self._buf, self._pos = b"", 0
        while not self._buf and not self._eof:
            self._buf = self._next()
        return bool(self._buf)

    def _next(self) -> bytes:
        if self._inflate is None:
            data = self._raw_read(_IN)
            self._eof = not data
            return data
        if not self._pending:
            self._pending = self._raw_read(_IN)
            if not self._pending:
                self._eof = True
                if not self._inflate.eof:
                    raise ImageError(f"layer {self.digest}: gzip data is truncated")
                return b""
        if self._inflate.eof:
            if len(self._pending) < len(GZIP_MAGIC):  # a member's magic may straddle two reads
                more = self._raw_read(_IN)
                self._pending += more
                if more:
                    return b""
            return self._next_member()
        out = self._inflate.decompress(self._pending, _OUT)
        self._pending = self._inflate.unconsumed_tail or self._inflate.unused_data
        return out

    def _next_member(self) -> bytes:
        """After one gzip member: another member, zero padding, or garbage."""
        if self._pending.startswith(GZIP_MAGIC):
            self._inflate = zlib.decompressobj(wbits=31)
            return b""
        if self._pending.strip(b"\0"):
            raise ImageError(f"layer {self.digest}: unexpected data after the gzip stream")
        self._pending = b""
        return b""

    def check(self) -> None:
        """Read the rest of the blob and compare its sha256 with the expected digest."""
        for chunk in iter(lambda: self.raw.read(_IN), b""):
            self.hash.update(chunk)
        if "sha256:" + self.hash.hexdigest() != self.digest:
            raise ImageError(f"layer {self.digest} does not match its digest (corrupt or truncated source)")
