"""phylo.io._compressed: one FormatError for every way a (possibly gzip) input is bad."""
from __future__ import annotations

import gzip

import pytest

from phylo.errors import FormatError
from phylo.io._compressed import is_gzip, open_binary, read_bytes, read_text

TEXT = "line one\nline two\n" * 500


@pytest.fixture
def files(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text(TEXT)
    good = tmp_path / "good.txt.gz"
    good.write_bytes(gzip.compress(TEXT.encode()))
    return tmp_path, plain, good


def test_plain_and_gzip_read_the_same(files):
    _, plain, good = files
    assert not is_gzip(plain) and is_gzip(good)
    assert read_bytes(plain) == read_bytes(good) == TEXT.encode()
    assert read_text(plain) == read_text(good) == TEXT
    for path in (plain, good):
        with open_binary(path) as fh:
            assert b"".join(fh) == TEXT.encode()


@pytest.mark.parametrize("damage", [
    lambda data: data[:2],                                 # magic only
    lambda data: data[:len(data) // 2],                    # truncated stream
    lambda data: data[:12] + b"\x00" * (len(data) - 12),   # corrupt deflate data
    lambda data: data[:-4] + b"\xff\xff\xff\xff",          # wrong length trailer
])
def test_damaged_gzip_is_one_format_error(files, damage):
    tmp, _, good = files
    bad = tmp / "bad.gz"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(FormatError, match="truncated or corrupt gzip") as info:
        read_bytes(bad)
    assert "bad.gz" in str(info.value)
    with pytest.raises(FormatError, match="truncated or corrupt gzip"):
        with open_binary(bad) as fh:   # found only while reading, inside the block
            for _ in fh:
                pass


def test_missing_directory_and_binary(files):
    tmp, _, _ = files
    with pytest.raises(FormatError, match="no such file"):
        read_bytes(tmp / "nope")
    with pytest.raises(FormatError, match="is a directory, expected an alignment file"):
        read_bytes(tmp, what="alignment file")
    blob = tmp / "blob"
    blob.write_bytes(b"ok\xff\xfe")
    with pytest.raises(FormatError, match=r"not a text file \(byte 0xff at offset 2"):
        read_text(blob)


def test_other_errors_in_the_block_pass_through(files):
    """Only gzip damage is translated: the caller's own errors are not masked."""
    _, plain, good = files
    for path in (plain, good):
        with pytest.raises(KeyError):
            with open_binary(path):
                raise KeyError("mine")
