"""SPSS (.sav) and Stata (.dta) files written in chunks, so that their memory does not grow with the number of rows.

pyreadstat (ReadStat) writes only from a complete data frame, which held every row of an export in memory at once.
Both formats declare each text column's width before the first row, so the file is written in two passes over a
temporary spool instead:

1. **Spool.** The rows are read once, converted to what the file stores (a float or missing for numbers, UTF-8 bytes
   for text; missing text is the empty string, as before) and pickled in batches to an anonymous temporary file,
   while the widest value of each text column is kept.
2. **Dictionary.** pyreadstat writes a one-row file from a prototype frame holding each text column's widest value.
   Its dictionary (the header, variable names, types, formats, variable labels, value labels, encoding; for Stata
   also the value-label tables after the data) depends only on the columns, their labels and those widths, so it is
   byte for byte the dictionary a whole-frame write gives. It is kept, and its row counts are patched.
3. **Data.** The spooled rows are encoded as ReadStat encodes them: uncompressed SPSS rows of 8-byte doubles
   (system-missing = -DBL_MAX) and space-padded strings in 8-byte units (longer than 255 bytes: 255-byte segments,
   each in 256 bytes); Stata rows of doubles (missing ``.`` = 2**1023), NUL-padded ``str#`` and, for text of 2045
   bytes or more, ``strL`` references whose contents follow the data.

The prototype's own data row is encoded the same way and compared with ReadStat's before anything else is written,
so a change in ReadStat's encoding stops the export with an error instead of producing a wrong file. The peak memory
is one batch of rows plus the dictionary, whatever the number of rows. Like ReadStat, a ``strL`` text that occurs
again refers to its first entry; only the first ``STRL_REMEMBERED`` distinct texts are remembered (by digest, to keep
the memory bounded), later repeats get entries of their own, which read back the same. De-identified exports hold no
free text, so ``strL`` columns are rare.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle  # noqa: S403 - only for our own spool file, written and read back by this module within one call
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

SPOOL_BATCH = 2000  # rows per pickled batch; small enough to stay flat, big enough to amortise pickling
BUFFER = 256 * 1024  # bytes of encoded rows gathered before one write

SAV_SYSMIS = -sys.float_info.max  # SPSS system-missing, as ReadStat writes it (0xffefffffffffffff)
DTA_MISSING = 2.0**1023  # Stata's ".", as ReadStat writes it (0x7fe0000000000000)
SAV_LONG = 255  # SPSS: a string wider than this is a "very long string" stored in segments
DTA_STRL_FROM = 2045  # pyreadstat makes a text column of this many bytes or more a Stata strL
DTA_DOUBLE = 65526  # Stata 118/119 type code of a double
DTA_STRL = 32768  # ... of a strL
GSO_ASCII = 130  # a strL stored as text with a trailing NUL
STRL_REMEMBERED = 65536  # distinct strL texts whose first entry is reused (under 10 MB of digests)


class StatFileError(RuntimeError):
    """The dictionary pyreadstat wrote is not laid out as this module expects (a ReadStat upgrade changed it)."""


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool
    label: str
    value_labels: dict[float, str] | None


@dataclass
class Spool:
    """The rows in their stored form, in a temporary file that is removed when closed."""

    file: IO[bytes]
    rows: int
    widest: list[bytes | None]  # per column: the widest text (None for numeric columns)

    def batches(self) -> Iterable[list[tuple[Any, ...]]]:
        self.file.seek(0)
        while True:
            try:
                batch: list[tuple[Any, ...]] = pickle.load(self.file)  # noqa: S301 - our own spool, see spool()
            except EOFError:
                return
            yield batch


def spool(
    columns: Sequence[Column], rows: Iterable[tuple[Any, ...]], on_rows: Callable[[int], None], *, batch_rows: int
) -> Spool:
    """Pass 1: convert and spool the rows, measuring the text columns. ``on_rows`` is told the count per batch."""
    numeric = [c.numeric for c in columns]
    width = [0 for _ in columns]
    widest: list[bytes | None] = [None if n else b"" for n in numeric]
    # An anonymous file (no name on disk) created by this process with mode 0600: nothing else can write what
    # batches() unpickles.
    file = tempfile.TemporaryFile(prefix="trialsite-spool-")  # noqa: SIM115 - closed by the caller
    batch: list[tuple[Any, ...]] = []
    n = 0
    try:
        for row in rows:
            out: list[Any] = []
            for i, value in enumerate(row):
                if numeric[i]:
                    out.append(None if value is None else float(value))
                else:
                    data = b"" if value is None else str(value).encode("utf-8")
                    if len(data) > width[i]:
                        width[i] = len(data)
                        widest[i] = data
                    out.append(data)
            batch.append(tuple(out))
            n += 1
            if len(batch) >= batch_rows:
                pickle.dump(batch, file, protocol=pickle.HIGHEST_PROTOCOL)
                batch = []
                on_rows(n)
        if batch:
            pickle.dump(batch, file, protocol=pickle.HIGHEST_PROTOCOL)
        on_rows(n)
    except BaseException:
        file.close()
        raise
    return Spool(file=file, rows=n, widest=widest)


def _prototype(kind: str, columns: Sequence[Column], widest: Sequence[bytes | None], label: str) -> bytes:
    """A one-row file from pyreadstat: numbers missing, each text column its widest value (the declared widths)."""
    import pandas as pd
    import pyreadstat

    data = {}
    for column, wide in zip(columns, widest, strict=True):
        if column.numeric:
            data[column.name] = pd.Series([math.nan], dtype="float64")
        else:
            data[column.name] = pd.Series([(wide or b"").decode("utf-8")], dtype=object)
    frame = pd.DataFrame(data, columns=[c.name for c in columns])
    value_labels = {c.name: c.value_labels for c in columns if c.value_labels}
    # Stata limits variable labels to 80 characters.
    labels: list[str | None] = [c.label[:80] for c in columns]
    fd, path = tempfile.mkstemp(prefix="trialsite-dictionary-", suffix="." + kind)
    os.close(fd)
    try:
        if kind == "sav":
            pyreadstat.write_sav(
                frame, path, file_label=label, column_labels=labels, variable_value_labels=value_labels
            )
        else:
            pyreadstat.write_dta(
                frame, path, file_label=label[:80], column_labels=labels, variable_value_labels=value_labels
            )
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def _check_little_endian() -> None:
    # ReadStat writes in the machine's byte order; the encoders below write little-endian (x86-64, arm64).
    if sys.byteorder != "little":
        raise StatFileError("SPSS/Stata export needs a little-endian machine")


# ------------------------------------------------------------------------------------------------------------- SPSS


def _sav_storage(width: int) -> int:
    """Bytes a string of ``width`` occupies in an uncompressed row (ReadStat's sav_variable_width)."""
    if width > SAV_LONG:
        segments = (width + 251) // 252
        return (segments - 1) * 256 + (width - (segments - 1) * 252 + 7) // 8 * 8
    return max(8, (width + 7) // 8 * 8)


def _sav_string(data: bytes, storage: int) -> bytes:
    if len(data) <= SAV_LONG:
        return data.ljust(storage, b" ")
    # ReadStat fills 255 bytes of each 256-byte segment (the last byte stays a space).
    parts = [data[i : i + SAV_LONG].ljust(256, b" ") for i in range(0, len(data), SAV_LONG)]
    return b"".join(parts)[:storage].ljust(storage, b" ")


def _sav_encoder(
    columns: Sequence[Column], widest: Sequence[bytes | None]
) -> tuple[int, Callable[[tuple[Any, ...]], bytes]]:
    storages: list[int] = []
    fmt = "<"
    for column, wide in zip(columns, widest, strict=True):
        if column.numeric:
            storages.append(0)
            fmt += "d"
        else:
            # pyreadstat declares at least one byte for a text column.
            storage = _sav_storage(max(1, len(wide or b"")))
            storages.append(storage)
            fmt += f"{storage}s"
    packer = struct.Struct(fmt)
    plan = list(enumerate(storages))

    def encode(row: tuple[Any, ...]) -> bytes:
        values: list[Any] = []
        for i, storage in plan:
            value = row[i]
            if storage == 0:
                values.append(SAV_SYSMIS if value is None or value != value else value)
            elif len(value) <= SAV_LONG:
                values.append(value.ljust(storage, b" "))
            else:
                values.append(_sav_string(value, storage))
        return packer.pack(*values)

    return packer.size, encode


def _write_sav(out: IO[bytes], columns: Sequence[Column], data: Spool, label: str) -> None:
    proto = _prototype("sav", columns, data.widest, label)
    row_len, encode = _sav_encoder(columns, data.widest)
    header = bytearray(proto[: len(proto) - row_len])
    # The dictionary ends with the number-of-cases record (type 7, subtype 16: two 8-byte fields, 1 and the count)
    # and the termination record (999, 0). Check both before patching.
    if (
        proto[:4] != b"$FL2"
        or struct.unpack_from("<i", header, 64)[0] != 2
        or header[-8:] != struct.pack("<ii", 999, 0)
        or header[-40:-16] != struct.pack("<iiiiq", 7, 16, 8, 2, 1)
        or struct.unpack_from("<i", header, 80)[0] != 1
    ):
        raise StatFileError("unexpected SPSS dictionary layout")
    proto_row = tuple(None if c.numeric else (w or b"") for c, w in zip(columns, data.widest, strict=True))
    if encode(proto_row) != proto[len(header) :]:
        raise StatFileError("SPSS row encoding differs from ReadStat's")
    struct.pack_into("<i", header, 80, data.rows)  # ncases in the file header
    struct.pack_into("<q", header, len(header) - 16, data.rows)  # and in the number-of-cases record
    out.write(header)
    buf = bytearray()
    for batch in data.batches():
        for row in batch:
            buf += encode(row)
        if len(buf) >= BUFFER:
            out.write(buf)
            buf.clear()
    out.write(buf)


# ------------------------------------------------------------------------------------------------------------ Stata


def _dta_map(proto: bytes) -> list[int]:
    at = proto.find(b"<map>")
    if at < 0:
        raise StatFileError("unexpected Stata layout: no map")
    return list(struct.unpack_from("<14Q", proto, at + len(b"<map>")))


def _write_dta(out: IO[bytes], columns: Sequence[Column], data: Spool, label: str) -> None:
    proto = _prototype("dta", columns, data.widest, label)
    offsets = _dta_map(proto)
    release = proto[len(b"<stata_dta><header><release>") :][:3]
    if (
        not proto.startswith(b"<stata_dta><header><release>")
        or release not in (b"118", b"119")
        or b"<byteorder>LSF</byteorder>" not in proto[: offsets[1]]
    ):
        raise StatFileError("unexpected Stata header")
    k = len(columns)
    # The variable types tell the row layout: a double, a str# of that many bytes, or a strL reference.
    types_at = offsets[2] + len(b"<variable_types>")
    types = struct.unpack_from(f"<{k}H", proto, types_at)
    fmt = "<"
    plan: list[tuple[int, int]] = []  # (column index, 0 = double, -1 = strL, n = str#)
    for i, (column, code) in enumerate(zip(columns, types, strict=True)):
        if column.numeric and code == DTA_DOUBLE:
            fmt += "d"
            plan.append((i, 0))
        elif not column.numeric and code == DTA_STRL:
            fmt += "Q"
            plan.append((i, -1))
        elif not column.numeric and 1 <= code < DTA_STRL_FROM:
            fmt += f"{code}s"  # struct pads with NULs, as ReadStat's strncpy does
            plan.append((i, code))
        else:
            raise StatFileError(f"unexpected Stata type {code} for column {column.name}")
    packer = struct.Struct(fmt)
    # A strL cell holds (v, o): the variable and observation numbers (1-based) of its GSO entry. Release 118 keeps
    # v in 2 bytes and o in 6, release 119 v in 3 and o in 5.
    v_bits = 16 if release == b"118" else 24
    data_at, strls_at, labels_at, end_at, eof = offsets[9], offsets[10], offsets[11], offsets[12], offsets[13]
    if proto[data_at : data_at + 6] != b"<data>" or proto[strls_at - 7 : strls_at] != b"</data>":
        raise StatFileError("unexpected Stata data section")
    if proto[strls_at : strls_at + 7] != b"<strls>" or proto[labels_at - 8 : labels_at] != b"</strls>":
        raise StatFileError("unexpected Stata strLs section")

    strls = tempfile.TemporaryFile(prefix="trialsite-strls-")  # noqa: SIM115 - closed below
    seen: dict[bytes, int] = {}  # digest of a strL text -> the (v, o) cell of its entry
    try:

        def encode(row: tuple[Any, ...], obs: int) -> bytes:
            values: list[Any] = []
            for i, kind in plan:
                value = row[i]
                if kind == 0:
                    values.append(DTA_MISSING if value is None or value != value else value)
                elif kind > 0:
                    values.append(value)
                else:
                    key = hashlib.blake2b(value, digest_size=16).digest()
                    ref = seen.get(key)
                    if ref is None:
                        v = i + 1
                        strls.write(b"GSO" + struct.pack("<IQBI", v, obs, GSO_ASCII, len(value) + 1) + value + b"\0")
                        ref = v | (obs << v_bits)
                        if len(seen) < STRL_REMEMBERED:
                            seen[key] = ref
                    values.append(ref)
            return packer.pack(*values)

        proto_row = tuple(None if c.numeric else (w or b"") for c, w in zip(columns, data.widest, strict=True))
        if encode(proto_row, 1) != proto[data_at + 6 : strls_at - 7]:
            raise StatFileError("Stata row encoding differs from ReadStat's")
        strls.seek(0)
        strls.truncate()
        seen.clear()

        header = bytearray(proto[:data_at])
        n_at = header.find(b"<N>")
        if n_at < 0 or struct.unpack_from("<Q", header, n_at + 3)[0] != 1:
            raise StatFileError("unexpected Stata header: no N")
        out.write(header)  # patched below, once the sizes are known
        out.write(b"<data>")
        buf = bytearray()
        obs = 0
        for batch in data.batches():
            for row in batch:
                obs += 1
                buf += encode(row, obs)
            if len(buf) >= BUFFER:
                out.write(buf)
                buf.clear()
        out.write(buf)
        out.write(b"</data>")
        new_strls_at = out.tell()
        out.write(b"<strls>")
        strls.seek(0)
        shutil.copyfileobj(strls, out, BUFFER)
        out.write(b"</strls>")
        new_labels_at = out.tell()
        out.write(proto[labels_at:])
    finally:
        strls.close()
    struct.pack_into("<Q", header, n_at + 3, data.rows)
    map_at = header.find(b"<map>") + len(b"<map>")
    shift = new_labels_at - labels_at
    struct.pack_into("<4Q", header, map_at + 8 * 10, new_strls_at, new_labels_at, end_at + shift, eof + shift)
    out.seek(0)
    out.write(header)


# ------------------------------------------------------------------------------------------------------------ entry


def write(
    kind: str,
    columns: Sequence[Column],
    rows: Iterable[tuple[Any, ...]],
    path: str,
    *,
    label: str,
    on_rows: Callable[[int], None],
    batch_rows: int | None = None,
) -> None:
    """Write ``rows`` as an SPSS (``kind="sav"``) or Stata (``"dta"``) file at ``path``, ``batch_rows`` rows (default
    SPOOL_BATCH) at a time."""
    _check_little_endian()
    data = spool(columns, rows, on_rows, batch_rows=batch_rows or SPOOL_BATCH)
    try:
        with open(path, "wb") as out:
            if kind == "sav":
                _write_sav(out, columns, data, label)
            else:
                _write_dta(out, columns, data, label)
    finally:
        data.file.close()
