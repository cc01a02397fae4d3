"""The build context as a tar stream, written without the tarfile module.

The CLI starts for every build, and importing tarfile (with shutil, copy and friends)
costs a few milliseconds of each start; a context needs only ustar headers, with a PAX
record for the names, link targets and sizes ustar cannot hold.  Owners are 0:0 with no
names (the daemon chowns copies to root anyway), times are whole seconds.
"""

from __future__ import annotations

import os
import stat

_BLOCK = 512
_RECORD = 20 * _BLOCK
_REGULAR, _HARDLINK, _SYMLINK, _DIRECTORY, _PAX = b"0", b"1", b"2", b"5", b"x"
_MAX_OCTAL_11 = 8**11


class ContextTar:
    """Appends entries to the binary file `out`; `close` ends the archive."""

    def __init__(self, out: object) -> None:
        self._out = out
        self._written = 0
        self._inodes: dict[tuple[int, int], str] = {}  # hard links seen, by inode

    def _write(self, data: bytes) -> None:
        self._out.write(data)  # type: ignore[attr-defined]
        self._written += len(data)

    def add_path(self, path: str, name: str) -> None:
        """Add the file, directory or symlink at `path` as `name`; other kinds are skipped,
        as docker skips sockets and devices in a context."""
        st = os.lstat(path)
        mode, mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        if stat.S_ISDIR(st.st_mode):
            self._header(name.rstrip("/") + "/", _DIRECTORY, mode, mtime)
        elif stat.S_ISLNK(st.st_mode):
            self._header(name, _SYMLINK, mode, mtime, link=os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            inode = (st.st_dev, st.st_ino)
            first = self._inodes.get(inode) if st.st_nlink > 1 else None
            if first is not None:
                self._header(name, _HARDLINK, mode, mtime, link=first)
                return
            if st.st_nlink > 1:
                self._inodes[inode] = name
            with open(path, "rb") as handle:
                self._file(name, mode, mtime, handle, st.st_size)

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._header(name, _REGULAR, mode, 0, size=len(data))
        self._write(data)
        self._pad(len(data))

    def _file(self, name: str, mode: int, mtime: int, handle: object, size: int) -> None:
        self._header(name, _REGULAR, mode, mtime, size=size)
        left = size
        while left:
            chunk = handle.read(min(left, 1 << 20))  # type: ignore[attr-defined]
            if not chunk:
                raise OSError(f"{name}: file shrank while it was being sent")
            self._write(chunk)
            left -= len(chunk)
        self._pad(size)

    def _pad(self, size: int) -> None:
        if size % _BLOCK:
            self._write(bytes(_BLOCK - size % _BLOCK))

    def _header(
        self, name: str, kind: bytes, mode: int, mtime: int, *, size: int = 0, link: str = ""
    ) -> None:
        raw_name = name.encode("utf-8", "surrogateescape")
        raw_link = link.encode("utf-8", "surrogateescape")
        pax: dict[str, bytes] = {}
        if len(raw_name) > 100 or not name.isascii():
            pax["path"] = raw_name
        if len(raw_link) > 100 or not link.isascii():
            pax["linkpath"] = raw_link
        if size >= _MAX_OCTAL_11:
            pax["size"] = str(size).encode()
        if pax:
            records = b"".join(_pax_record(key, value) for key, value in pax.items())
            self._write(_ustar(b"././@PaxHeader", _PAX, 0o644, 0, len(records), b""))
            self._write(records)
            self._pad(len(records))
        # With a PAX record the ustar fields are only a fallback for old readers.
        self._write(
            _ustar(raw_name[:100], kind, mode, mtime, 0 if "size" in pax else size, raw_link[:100])
        )

    def close(self) -> int:
        """End the archive (two zero blocks, padded to a whole record); return its size."""
        self._write(bytes(2 * _BLOCK))
        if self._written % _RECORD:
            self._write(bytes(_RECORD - self._written % _RECORD))
        return self._written


def _pax_record(key: str, value: bytes) -> bytes:
    """One "LEN key=value\\n" record; LEN counts its own digits."""
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _ustar(name: bytes, kind: bytes, mode: int, mtime: int, size: int, link: bytes) -> bytes:
    header = bytearray(_BLOCK)
    header[0 : len(name)] = name
    header[100:108] = _octal(mode, 8)
    header[108:116] = _octal(0, 8)  # uid
    header[116:124] = _octal(0, 8)  # gid
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(max(mtime, 0), 12)
    header[148:156] = b" " * 8  # the checksum counts its own field as spaces
    header[156:157] = kind
    header[157 : 157 + len(link)] = link
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    checksum = sum(header)
    header[148:156] = b"%06o\0 " % checksum
    return bytes(header)
