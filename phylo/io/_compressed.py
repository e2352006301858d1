"""Opening input files that may be gzip-compressed, with one clean error for bad ones.

Every reader of user files goes through here so that a missing file, a directory, a
truncated or corrupt gzip stream (``printf '\\x1f\\x8b' > t.fa``) and undecodable bytes
all become one :class:`phylo.errors.FormatError` naming the file, never an
``EOFError``, ``zlib.error`` or ``UnicodeDecodeError`` traceback.

API
---
``read_bytes(path, *, what="file") -> bytes``
    The whole (decompressed) content.
``read_text(path, *, what="file", encoding="utf-8") -> str``
    The whole content as text; bytes that are not valid ``encoding`` raise.
``open_binary(path, *, what="file")``
    A context manager yielding a binary stream (decompressing on the fly) for large
    files read incrementally; gzip errors raised while the caller reads inside the
    ``with`` block are turned into :class:`FormatError`.
``is_gzip(path) -> bool``
    Whether the file starts with the gzip magic bytes.

``what`` names the expected kind of file in the "is a directory" message.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from typing import BinaryIO, Iterator

from ..errors import FormatError

GZIP_MAGIC = b"\x1f\x8b"

#: What a damaged gzip stream raises inside :mod:`gzip` (a short stream: EOFError; bad
#: header: BadGzipFile, an OSError; bad deflate data or CRC: zlib.error / BadGzipFile).
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _check_path(path: str | os.PathLike, what: str) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FormatError("no such file", path=p)
    if os.path.isdir(p):
        raise FormatError(f"is a directory, expected {_article(what)}", path=p)
    if not os.access(p, os.R_OK):
        raise FormatError("permission denied (cannot read)", path=p)
    return p


def require_readable(path: str | os.PathLike, *, what: str = "file") -> str:
    """``path`` as a string when it names a readable file; otherwise one
    :class:`~phylo.errors.FormatError` naming it (missing, a folder, unreadable)."""
    return _check_path(path, what)


def _article(what: str) -> str:
    return ("an " if what[:1].lower() in "aeiou" else "a ") + what


def _gzip_error(path: str, exc: BaseException) -> FormatError:
    detail = str(exc).strip() or type(exc).__name__
    return FormatError(f"truncated or corrupt gzip data ({detail})", path=path)


def is_gzip(path: str | os.PathLike) -> bool:
    """True when ``path`` begins with the gzip magic bytes ``1f 8b``."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def read_bytes(path: str | os.PathLike, *, what: str = "file") -> bytes:
    """The content of ``path``, gunzipped when it starts with the gzip magic bytes."""
    p = _check_path(path, what)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FormatError(f"cannot read ({exc.strerror or exc})", path=p) from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except _GZIP_ERRORS as exc:
            raise _gzip_error(p, exc) from None
    return data


def read_text(path: str | os.PathLike, *, what: str = "file",
              encoding: str = "utf-8") -> str:
    """The (gunzipped) content of ``path`` decoded as ``encoding``.

    A file that is not valid text (binary data) raises a :class:`FormatError` that
    says where the first undecodable byte is."""
    data = read_bytes(path, what=what)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FormatError(f"not a text file (byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start} is not {encoding})", path=os.fspath(path)) from None


@contextlib.contextmanager
def open_binary(path: str | os.PathLike, *, what: str = "file") -> Iterator[BinaryIO]:
    """A binary stream over ``path``, decompressed when gzip; closes on exit.

    Gzip errors raised while the ``with`` block reads (a truncated stream is only found
    at its end) become one :class:`FormatError` naming the file."""
    p = _check_path(path, what)
    compressed = is_gzip(p)
    fh: BinaryIO = gzip.open(p, "rb") if compressed else open(p, "rb")  # type: ignore[assignment]
    try:
        yield fh
    except _GZIP_ERRORS as exc:
        if not compressed:
            raise
        raise _gzip_error(p, exc) from None
    finally:
        fh.close()
