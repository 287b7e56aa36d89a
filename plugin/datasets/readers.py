"""Readers for the two kinds of training/evaluation data: labelled pairs and BEIR directories.

Every malformed row raises :class:`~embedlens.errors.DataFormatError` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from embedlens.errors import DataFormatError

__all__ = [
    "BeirDataset",
    "DataSource",
    "PairsDataset",
    "as_dataset",
    "data_name",
    "is_beir_dir",
    "leading_sentence",
    "load_data",
    "pairs_dataset",
    "read_beir",
    "read_pairs",
    "retrieval_dataset",
]

LabelKind = Literal["binary", "graded"]
_SNLI_LABELS = {"entailment": 1.0, "contradiction": -1.0}


def _err(path: Path, line: int | None, why: str) -> DataFormatError:
    where = f"{path}:{line}" if line is not None else str(path)
    return DataFormatError(f"{where}: {why}")


#: the largest CSV field accepted (a C long everywhere, so no OverflowError on any platform).
_CSV_FIELD_LIMIT = 2**31 - 1


def _allow_long_csv_fields() -> None:
    """Raise the csv module's field limit (131,072 characters by default) so long texts read as in JSONL.

    The limit is only ever raised, never lowered, so concurrent readers cannot undo each other.
    """
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)


def _first_bad_utf8_line(p: Path) -> int:
    """The 1-based line of the first byte sequence in ``p`` that is not valid UTF-8 (read in bounded chunks)."""
    line, tail = 1, b""
    with p.open("rb") as f:
        while chunk := f.read(1 << 20):
            buf = tail + chunk
            try:
                buf.decode("utf-8")
            except UnicodeDecodeError as e:
                if not (e.end == len(buf) and e.reason == "unexpected end of data"):
                    return line + buf.count(b"\n", 0, e.start)
                # a multi-byte character cut by the chunk boundary: decide with the next chunk
                line += buf.count(b"\n", 0, e.start)
                tail = buf[e.start :]
                continue
            line += buf.count(b"\n")
            tail = b""
    return line


_BINARY = "contains a NUL byte: a binary file, not CSV text"


def _not_utf8(p: Path) -> DataFormatError:
    return _err(
        p,
        _first_bad_utf8_line(p),
        "not UTF-8 text (a binary file, or another encoding such as Latin-1: save it as UTF-8)",
    )


# --------------------------------------------------------------------------- pairs
@dataclass
class PairsDataset:
    """Labelled text pairs.

    Attributes:
        text_1, text_2: the two sides, ``n`` strings each.
        labels: ``(n,)`` float32 — ``+1/-1`` for binary data (0/1 files are mapped to -1/+1), the
            original scale for graded data.
        kind: ``"binary"`` or ``"graded"``.
        splits: ``(n,)`` split names, or None when the file has no ``split`` column.
        source: the file read.
    """

    text_1: list[str]
    text_2: list[str]
    labels: np.ndarray
    kind: LabelKind
    splits: np.ndarray | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.text_1)

    def subset(self, mask: np.ndarray) -> PairsDataset:
        """Rows where boolean ``mask`` ``(n,)`` is true."""
        idx = np.flatnonzero(mask)
        return PairsDataset(
            [self.text_1[i] for i in idx],
            [self.text_2[i] for i in idx],
            self.labels[idx],
            self.kind,
            None if self.splits is None else self.splits[idx],
            self.source,
        )

    def split(self, name: str) -> PairsDataset:
        """Rows of split ``name``.

        Raises:
            DataFormatError: when there is no split column or no row of that split.
        """
        if self.splits is None:
            raise _err(Path(self.source), None, f"has no 'split' column (asked for {name!r})")
        mask = self.splits == name
        if not mask.any():
            have = sorted(set(self.splits.tolist()))
            raise _err(Path(self.source), None, f"no row of split {name!r} (splits: {have})")
        return self.subset(mask)

    def summary(self) -> dict[str, Any]:
        """Counts for metadata and reports."""
        out: dict[str, Any] = {"pairs": len(self), "kind": self.kind, "source": self.source}
        if self.kind == "binary":
            out["positives"] = int((self.labels > 0).sum())
            out["negatives"] = int((self.labels < 0).sum())
        return out


def read_pairs(path: str | os.PathLike[str]) -> PairsDataset:
    """Read a pairs file: CSV or JSONL with ``text_1``, ``text_2``, ``label`` (optional ``split``).

    Labels may be ±1, 0/1 (mapped to -1/+1) or graded scores (kept). Labels that are -1, 0 and 1 (or
    -1 and 0) mix the two binary conventions, so 0 could mean neutral or negative: they are refused,
    naming the first 0 label (drop those rows or write them as -1 for binary labels; rescale to [0, 1]
    for graded ones). The SNLI CSV layout (``sentence1``, ``sentence2``, ``gold_label``) is also read:
    entailment → +1, contradiction → -1, other labels dropped.

    Raises:
        DataFormatError: missing file or columns, empty texts, a label that is not a number, labels
            that are -1/0/1, or an unterminated quoted CSV field, naming file and line.
    """
    p = Path(path)
    _need_regular_file(p, "pairs file")
    is_jsonl = p.suffix.lower() in (".jsonl", ".json")
    rows = _read_jsonl_rows(p) if is_jsonl else _read_csv_rows(p)
    return _pairs_from_rows(rows, p, header_line=None if is_jsonl else 1)


def _pairs_from_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]], p: Path, *, header_line: int | None
) -> PairsDataset:
    """Validate rows ``(line, row)`` of a pairs source into a :class:`PairsDataset` (errors name ``p:line``)."""
    t1: list[str] = []
    t2: list[str] = []
    raw: list[float] = []
    lines: list[int] = []
    splits: list[str] = []
    has_split: bool | None = None
    snli: bool | None = None
    for line, row in rows:
        if snli is None:
            snli = "text_1" not in row and {"sentence1", "sentence2", "gold_label"} <= row.keys()
            missing = set() if snli else {"text_1", "text_2", "label"} - row.keys()
            if missing:  # a CSV's columns are its header, line 1; a JSONL's are the first object's
                where = line if header_line is None else header_line
                raise _err(p, where, f"missing column(s) {sorted(missing)}; expected text_1, text_2, label")
            has_split = "split" in row
        if snli:
            gold = str(row.get("gold_label", ""))
            if gold not in _SNLI_LABELS:
                continue
            a, b, value = row.get("sentence1"), row.get("sentence2"), _SNLI_LABELS[gold]
        else:
            a, b = row.get("text_1"), row.get("text_2")
            try:
                value = float(row.get("label"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise _err(p, line, f"label {row.get('label')!r} is not a number") from None
            if not np.isfinite(value):
                raise _err(p, line, f"label {value} is not finite")
        for col, text in (("text_1", a), ("text_2", b)):
            if text is not None and not isinstance(text, str):  # JSONL: a number, a list, an object
                raise _err(p, line, f"{col} must be a string, got {_json_type(text)}")
            if not isinstance(text, str) or not text.strip():
                raise _err(p, line, f"empty or missing {col}")
        t1.append(str(a))
        t2.append(str(b))
        raw.append(value)
        lines.append(line)
        if has_split:
            split = str(row.get("split") or "").strip()
            if not split:
                raise _err(p, line, "empty split")
            splits.append(split)
    if not t1:
        raise _err(p, None, "no usable rows")
    labels = np.asarray(raw, dtype=np.float32)
    values = set(np.unique(labels).tolist())
    if {-1.0, 0.0} <= values <= {-1.0, 0.0, 1.0}:
        shown = "{-1, 0, 1}" if 1.0 in values else "{-1, 0}"
        raise _err(
            p,
            lines[raw.index(0.0)],
            f"labels are {shown}, which is ambiguous (0 could mean neutral or negative): for binary labels "
            "drop the 0 rows or write them as -1; for graded ones rescale to [0, 1] (-1 -> 0, 0 -> 0.5, 1 -> 1)",
        )
    if values <= {-1.0, 1.0}:
        kind: LabelKind = "binary"
    elif values <= {0.0, 1.0}:
        kind, labels = "binary", labels * 2 - 1
    else:
        kind = "graded"
    return PairsDataset(t1, t2, labels, kind, np.asarray(splits) if has_split else None, str(p))


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _need_regular_file(p: Path, what: str) -> None:
    """Raise unless ``p`` is a regular file (a FIFO or ``/dev/zero`` would hang or never end).

    Raises:
        DataFormatError: naming the path: not found, a symlink loop, or not a regular file.
    """
    import stat

    try:
        st = p.stat()
    except FileNotFoundError:
        raise _err(p, None, f"{what} not found") from None
    except (OSError, RuntimeError) as e:  # ELOOP: a symlink loop
        raise _err(p, None, f"{what} cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, device or socket"
        raise _err(p, None, f"not a regular file ({kind}): the {what} must be a CSV or JSONL file")


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _unterminated_quote(p: Path, line_num: int, fields: Sequence[Any]) -> DataFormatError:
    """The error for a quoted field that ran to the end of the file: it names the line where the quote opened.

    The csv reader (not strict) keeps such a field as everything after its opening quote, so the quote
    opened as many lines before the last (``line_num``) as the field holds line breaks.
    """
    last = next((v for v in reversed(fields) if isinstance(v, str)), "")
    opened = line_num - len(_LINE_BREAK.findall(last)) + last.endswith(("\n", "\r"))
    return _err(
        p, max(opened, 1), 'unterminated quoted field (a " that is never closed runs to the end of the file)'
    )


def _csv_fields(row: dict[Any, Any], fieldnames: Sequence[str]) -> list[Any]:
    """A DictReader row's fields in file order (the extra fields, under the key None, last)."""
    return [row.get(k) for k in fieldnames] + list(row.get(None) or [])


def _read_csv_rows(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    _allow_long_csv_fields()
    at_eof = False

    def lines(f: Iterable[str]) -> Iterator[str]:
        nonlocal at_eof
        yield from f
        at_eof = True  # the reader asked for a line past the last one

    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark that would stick to the first column name
    with p.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(lines(f))
        try:
            if reader.fieldnames is None:
                raise _err(p, 1, "empty file (no header)")
            if at_eof:  # a record ended only by the end of the file: only a quoted field does that
                raise _unterminated_quote(p, reader.line_num, reader.fieldnames)
            if any("\0" in name for name in reader.fieldnames):
                raise _err(p, reader.line_num, _BINARY)
            for row in reader:
                if at_eof:
                    raise _unterminated_quote(p, reader.line_num, _csv_fields(row, reader.fieldnames))
                if None in row:
                    raise _err(p, reader.line_num, "more fields than the header has")
                if any("\0" in v for v in row.values() if isinstance(v, str)):
                    raise _err(p, reader.line_num, _BINARY)
                yield reader.line_num, row
        except UnicodeDecodeError:
            raise _not_utf8(p) from None
        except csv.Error as e:
            raise _err(p, max(reader.line_num, 1), f"not a readable CSV text file ({e})") from None


def _read_jsonl_rows(p: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with p.open(encoding="utf-8-sig") as f:
        try:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise _err(p, line_no, f"invalid JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise _err(p, line_no, "expected a JSON object")
                yield line_no, row
        except UnicodeDecodeError:
            raise _not_utf8(p) from None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
#: a leading "sentence" longer than this is cut at a word boundary (pseudo-queries are short).
MAX_LEAD_CHARS = 300


def leading_sentence(text: str) -> str:
    """The first sentence of ``text`` (at most :data:`MAX_LEAD_CHARS` characters, cut at a word)."""
    text = " ".join(text.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""
    if len(first) > MAX_LEAD_CHARS:
        first = first[:MAX_LEAD_CHARS].rsplit(" ", 1)[0]
    return first


# --------------------------------------------------------------------------- BEIR
@dataclass
class BeirDataset:
    """A BEIR-format retrieval dataset.

    Attributes:
        corpus_ids: document ids, in file order.
        corpus_texts: ``title + " " + text`` for each document.
        queries: ``{query id: text}``.
        qrels: ``{split: {query id: {doc id: relevance}}}`` for each ``qrels/<split>.tsv`` read.
        root: the directory.
        corpus_titles: each document's title (``""`` where it has none).
        corpus_bodies: each document's text without the title.
    """

    corpus_ids: list[str]
    corpus_texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    root: str = ""
    corpus_titles: list[str] = field(default_factory=list)
    corpus_bodies: list[str] = field(default_factory=list)

    def pseudo_queries(self, kind: str = "auto") -> tuple[list[str], np.ndarray]:
        """Queries made from the corpus itself, no model: ``(texts, document rows)``.

        ``"titles"``: each document's title; ``"leads"``: the leading sentence of its text;
        ``"auto"``: the title where there is one, else the leading sentence. A pseudo-query equal
        to its whole document (a document that is only a title) is skipped: it teaches nothing.
        """
        titles = self.corpus_titles or [""] * len(self.corpus_ids)
        bodies = self.corpus_bodies or self.corpus_texts
        texts: list[str] = []
        rows: list[int] = []
        for i, (title, body, whole) in enumerate(zip(titles, bodies, self.corpus_texts, strict=True)):
            lead = leading_sentence(body)
            pick = {"titles": title, "leads": lead}.get(kind, title or lead)
            if pick and pick != whole:
                texts.append(pick)
                rows.append(i)
        return texts, np.asarray(rows, dtype=np.int64)

    def split_queries(self, split: str) -> tuple[list[str], list[str]]:
        """``(query ids, query texts)`` of the queries judged in ``split``, in qrels order.

        Raises:
            DataFormatError: when the split has no qrels file, the file has no judgement (header only)
                or no positive one (every score 0): nothing to train on or to measure.
        """
        if split not in self.qrels:
            have = sorted(self.qrels)
            raise _err(Path(self.root) / "qrels", None, f"no qrels/{split}.tsv (found {have})")
        qrels = self.qrels[split]
        if not qrels:
            raise _err(
                Path(self.root) / "qrels" / f"{split}.tsv", None, "no judgement (empty or header only)"
            )
        if not any(g > 0 for rel in qrels.values() for g in rel.values()):
            raise _err(
                Path(self.root) / "qrels" / f"{split}.tsv",
                None,
                "no positive judgement (every score is 0 or less): nothing relevant to train on or measure",
            )
        ids = list(qrels)
        return ids, [self.queries[q] for q in ids]

    def summary(self) -> dict[str, Any]:
        """Counts for metadata and reports."""
        return {
            "source": self.root,
            "documents": len(self.corpus_ids),
            "queries": {s: len(q) for s, q in self.qrels.items()},
        }


def is_beir_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory holding ``corpus.jsonl``."""
    return (Path(path) / "corpus.jsonl").is_file()


def read_beir(path: str | os.PathLike[str], splits: tuple[str, ...] | None = None) -> BeirDataset:
    """Read a BEIR directory: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Args:
        path: the dataset directory.
        splits: which qrels to read; None reads every ``qrels/*.tsv``.

    Raises:
        DataFormatError: naming file and line, for a missing file, invalid JSON, a missing or
            duplicate ``_id``, an empty text, a malformed qrels row, or a qrels id that is not in
            the corpus or queries.
    """
    root = Path(path)
    if not root.is_dir():
        raise _err(root, None, "BEIR directory not found")
    corpus_ids: list[str] = []
    corpus_texts: list[str] = []
    corpus_titles: list[str] = []
    corpus_bodies: list[str] = []
    seen: set[str] = set()
    for line, row in _read_jsonl_rows(_need(root / "corpus.jsonl")):
        doc_id = _id_of(root / "corpus.jsonl", line, row, seen)
        title = _text_field(row, "title", root / "corpus.jsonl", line)
        text = _text_field(row, "text", root / "corpus.jsonl", line)
        joined = f"{title} {text}".strip()
        if not joined:
            raise _err(root / "corpus.jsonl", line, f"document {doc_id!r} has empty title and text")
        corpus_ids.append(doc_id)
        corpus_texts.append(joined)
        corpus_titles.append(title)
        corpus_bodies.append(text)
    queries: dict[str, str] = {}
    seen_q: set[str] = set()
    for line, row in _read_jsonl_rows(_need(root / "queries.jsonl")):
        qid = _id_of(root / "queries.jsonl", line, row, seen_q)
        text = _text_field(row, "text", root / "queries.jsonl", line)
        if not text:
            raise _err(root / "queries.jsonl", line, f"query {qid!r} has empty text")
        queries[qid] = text
    qdir = root / "qrels"
    files = sorted(qdir.glob("*.tsv")) if splits is None else [qdir / f"{s}.tsv" for s in splits]
    doc_set = set(corpus_ids)
    qrels = {f.stem: _read_qrels(_need(f), doc_set, queries) for f in files}
    return BeirDataset(corpus_ids, corpus_texts, queries, qrels, str(root), corpus_titles, corpus_bodies)


def _text_field(row: Mapping[str, Any], key: str, p: Path, line: int | None, doc: str | None = None) -> str:
    """``row[key]`` stripped: a string, or ``""`` when missing or null; a list, object, number... is refused.

    Raises:
        DataFormatError: naming ``p:line`` (and document ``doc``, in memory) and the field.
    """
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):  # str() would embed a list or an object as its Python repr
        at = "" if doc is None else f"document {doc!r}: "
        raise _err(p, line, f"{at}{key} must be a string, got {_json_type(value)}")
    return value.strip()


def _need(p: Path) -> Path:
    if not p.is_file():
        raise _err(p, None, "file not found")
    return p


def _id_of(p: Path, line: int, row: dict[str, Any], seen: set[str]) -> str:
    raw = row.get("_id")
    if raw is None or str(raw).strip() == "":
        raise _err(p, line, "missing '_id'")
    key = str(raw)
    if key in seen:
        raise _err(p, line, f"duplicate _id {key!r}")
    seen.add(key)
    return key


def _read_qrels(p: Path, docs: set[str], queries: dict[str, str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with p.open(encoding="utf-8-sig") as f:
        try:
            for line_no, line in enumerate(f, 1):
                parts = line.rstrip("\r\n").split("\t")
                if line_no == 1 and parts[0] == "query-id":
                    continue
                if not line.strip():
                    continue
                if len(parts) != 3:
                    raise _err(p, line_no, f"expected 3 tab-separated fields, got {len(parts)}")
                qid, did, score = parts
                try:
                    value = float(score)
                except ValueError:
                    raise _err(p, line_no, f"score {score!r} is not a number") from None
                if not math.isfinite(value):
                    raise _err(p, line_no, f"score {score!r} is not a finite number")
                if value != int(value):  # 0.5 would be truncated to 0, 1.7 to 1
                    raise _err(
                        p, line_no, f"score {score!r} is not an integer (relevance grades are 0, 1, 2, ...)"
                    )
                if qid not in queries:
                    raise _err(p, line_no, f"query id {qid!r} is not in queries.jsonl")
                if did not in docs:
                    raise _err(p, line_no, f"corpus id {did!r} is not in corpus.jsonl")
                out.setdefault(qid, {})[did] = int(value)
        except UnicodeDecodeError:
            raise _not_utf8(p) from None
    return out


def load_data(path: str | os.PathLike[str]) -> BeirDataset | PairsDataset:
    """A BEIR directory or a pairs file, by what is at ``path``.

    Raises:
        DataFormatError: when the path is neither or is malformed.
    """
    p = Path(path)
    if p.is_dir():
        if not is_beir_dir(p):
            msg = f"{p}: a directory must be in BEIR format (corpus.jsonl, queries.jsonl, qrels/)"
            raise DataFormatError(msg)
        return read_beir(p)
    return read_pairs(p)


# --------------------------------------------------------------------------- in memory
#: what a workflow accepts as data: a path (BEIR directory or pairs file), a dataset, or a pandas DataFrame of pairs.
DataSource = Union[str, "os.PathLike[str]", "BeirDataset", "PairsDataset", Any]


def pairs_dataset(
    text_1: Sequence[str] | Any,
    text_2: Sequence[str] | None = None,
    labels: Sequence[float] | None = None,
    *,
    split: Sequence[str] | None = None,
    name: str = "pairs",
) -> PairsDataset:
    """Labelled pairs held in memory, checked exactly like a pairs file.

    Either three parallel lists (``split`` optional: ``"train"``/``"test"`` per pair), or one pandas
    ``DataFrame`` (anything with ``to_dict("records")``) with the columns of a pairs file: ``text_1``,
    ``text_2``, ``label`` and optionally ``split``. Labels ±1 or 0/1 are binary; other numbers are graded.

    Args:
        name: how messages name this data (``name:row``, rows counted from 1).

    Raises:
        DataFormatError: an argument of the wrong type (naming the parameter: ``text_1`` a single string or
            None, ...), lists of different lengths, a missing column, an empty text, a label that is not a
            finite number, labels that are -1/0/1 (see :func:`read_pairs`), naming the row.
    """
    _check_name("pairs_dataset", name)
    where = Path(name)
    is_frame = hasattr(text_1, "to_dict") and hasattr(text_1, "columns")  # a pandas Series is a list
    if is_frame and (text_2 is not None or labels is not None or split is not None):
        raise _err(where, None, "give a DataFrame alone (its split column is the split), or three lists")
    if is_frame:
        frame: Any = text_1
        records = frame.to_dict("records")
        rows: list[tuple[int, Mapping[str, Any]]] = [
            (i + 1, {str(k): v for k, v in r.items()}) for i, r in enumerate(records)
        ]
    else:
        first = _as_list("pairs_dataset", "text_1", text_1, "a list of strings or a DataFrame")
        if text_2 is None or labels is None:
            raise _err(
                where, None, "give text_1, text_2 and labels (three lists of equal length) or one DataFrame"
            )
        cols = {
            "text_1": first,
            "text_2": _as_list("pairs_dataset", "text_2", text_2, "a list of strings"),
            "label": _as_list("pairs_dataset", "labels", labels, "a list of numbers"),
        }
        if split is not None:
            cols["split"] = _as_list("pairs_dataset", "split", split, "None or a list of split names")
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) != 1:
            raise _err(where, None, f"the lists differ in length: {lengths}")
        rows = [(i + 1, {k: v[i] for k, v in cols.items()}) for i in range(lengths["text_1"])]
    if rows and "label" in rows[0][1]:
        rows = [(i, {**r, "label": _plain(r.get("label"))}) for i, r in rows]
    if rows and "split" in rows[0][1]:  # a missing split (None, NaN) is empty, as an empty cell of a file
        rows = [(i, {**r, "split": _text_or_empty(r.get("split"))}) for i, r in rows]
    return _pairs_from_rows(rows, where, header_line=None)


def _check_name(func: str, name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise DataFormatError(f"{func}: name must be a non-empty string, got {_what(name)}")


def _what(value: Any) -> str:
    """How a message names what was given: ``None``, ``a str ('ab')``, ``an int``."""
    if value is None:
        return "None"
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return (
        f"{article} {kind} ({value!r:.40})"
        if isinstance(value, (str, bytes, int, float))
        else f"{article} {kind}"
    )


def _as_list(func: str, param: str, value: Any, want: str, *, unordered: bool = False) -> list[Any]:
    """``list(value)`` for a list-like argument; a string, a mapping, a set (unless ``unordered``), None or a
    non-iterable is refused naming ``func``'s parameter ``param`` (a string would be read per character).

    Raises:
        DataFormatError: ``"func: param must be want, got ..."``.
    """
    bad = (
        value is None
        or isinstance(value, (str, bytes, Mapping))
        or (not unordered and isinstance(value, (set, frozenset)))
        or hasattr(value, "columns")  # a DataFrame iterates over its column names
    )
    if not bad:
        try:
            return list(value)
        except TypeError:
            pass
    hint = " (a single string would be read one character at a time)" if isinstance(value, str) else ""
    raise DataFormatError(f"{func}: {param} must be {want}, got {_what(value)}{hint}")


def _text_or_empty(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _plain(value: Any) -> Any:
    """A numpy / pandas scalar as its Python value (``float(np.float32(1))`` works, but ``str`` labels stay)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def retrieval_dataset(
    corpus: Mapping[str, str | Mapping[str, str]] | Sequence[str],
    train: Iterable[Sequence[Any]],
    test: Iterable[Sequence[Any]] | None = None,
    *,
    name: str = "retrieval data",
) -> BeirDataset:
    """A retrieval dataset held in memory: a corpus and judged ``(query text, document)`` pairs.

    Args:
        corpus: ``{doc id: text}``, ``{doc id: {"title": ..., "text": ...}}`` (BEIR's fields), or a list of
            texts (their ids are their positions, ``"0"``, ``"1"``, ...).
        train: judgements to train on: ``(query text, doc id)`` or ``(query text, doc id, grade)``; a
            document may also be given by its position in the corpus (an ``int``). Pairs with the same
            query text make one query with several relevant documents. None: no training judgements
            (data only evaluated).
        test: judgements to evaluate on, in the same form (optional; evaluation needs it).
        name: how messages name this data.

    Raises:
        DataFormatError: an argument of the wrong type (naming the parameter: ``corpus`` None or a single
            string, ``train`` a mapping, ...), an empty text, a title or text that is not a string, a
            document not in the corpus, a grade that is not an integer, naming the split and the judgement
            (counted from 1).
    """
    _check_name("retrieval_dataset", name)
    where = Path(name)
    by_position = not isinstance(corpus, Mapping)  # a list corpus: documents may be given by position
    items: Iterable[tuple[Any, Any]]
    if isinstance(corpus, Mapping):
        items = corpus.items()
    else:
        want = "a mapping {doc id: text or {title, text}} or a list of texts"
        items = ((str(i), t) for i, t in enumerate(_as_list("retrieval_dataset", "corpus", corpus, want)))
    corpus_ids: list[str] = []
    corpus_texts: list[str] = []
    corpus_titles: list[str] = []
    corpus_bodies: list[str] = []
    for doc_id, value in items:
        if isinstance(value, Mapping):
            title = _text_field(value, "title", where, None, doc=doc_id)
            text = _text_field(value, "text", where, None, doc=doc_id)
        elif isinstance(value, str):
            title, text = "", value.strip()
        else:
            raise _err(
                where,
                None,
                f"document {doc_id!r} must be a string or a {{title, text}} mapping, got {_json_type(value)}",
            )
        if not (title or text):
            raise _err(where, None, f"document {doc_id!r} has empty title and text")
        corpus_ids.append(str(doc_id))
        corpus_texts.append(f"{title} {text}".strip())
        corpus_titles.append(title)
        corpus_bodies.append(text)
    if len(set(corpus_ids)) != len(corpus_ids):
        raise _err(where, None, "duplicate document ids in the corpus")
    row_of = {d: i for i, d in enumerate(corpus_ids)}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    texts_of: dict[str, set[str]] = {}
    for split, judged in (("train", train), ("test", test)):
        if judged is None:
            continue
        judgements = _as_list(
            "retrieval_dataset",
            split,
            judged,
            "a list of judgements, (query text, doc id) or (query text, doc id, grade) tuples",
            unordered=True,
        )
        out: dict[str, dict[str, int]] = {}
        qid_of: dict[str, str] = {}  # query ids are per split: a test query never merges into a training one
        for n, item in enumerate(judgements, start=1):
            at = f"{split} judgement {n}"
            if (
                isinstance(item, (str, bytes, Mapping))
                or not (hasattr(item, "__len__") and hasattr(item, "__getitem__"))
                or not 2 <= len(item) <= 3
            ):
                raise _err(
                    where,
                    None,
                    f"{at}: expected (query text, doc id) or (query text, doc id, grade), got {item!r}",
                )
            query, doc = item[0], item[1]
            grade = item[2] if len(item) == 3 else 1
            if not isinstance(query, str) or not query.strip():
                raise _err(where, None, f"{at}: the query must be a non-empty string, got {query!r}")
            if by_position and isinstance(doc, (int, np.integer)) and not isinstance(doc, bool):
                if not 0 <= int(doc) < len(corpus_ids):
                    raise _err(
                        where,
                        None,
                        f"{at}: document position {doc} is outside the corpus (0..{len(corpus_ids) - 1})",
                    )
                doc_id = corpus_ids[int(doc)]
            else:
                doc_id = str(doc)
            if doc_id not in row_of:
                raise _err(where, None, f"{at}: document {doc!r} is not in the corpus")
            if isinstance(grade, (float, np.floating)) and float(grade).is_integer():
                grade = int(grade)
            if isinstance(grade, bool) or not isinstance(grade, (int, np.integer)):
                raise _err(where, None, f"{at}: the grade must be an integer, got {grade!r}")
            text = " ".join(query.split())
            qid = qid_of.setdefault(text, f"{split}-q{len(qid_of)}")
            queries[qid] = text
            out.setdefault(qid, {})[doc_id] = int(grade)
        qrels[split] = out
        texts_of[split] = set(qid_of)
    shared = texts_of.get("train", set()) & texts_of.get("test", set())
    if shared:
        import warnings

        from embedlens.errors import EmbedlensWarning

        warnings.warn(
            f"{name}: {len(shared)} test quer{'y is' if len(shared) == 1 else 'ies are'} also a training query "
            f"(e.g. {sorted(shared)[0]!r}): their scores are not held out",
            EmbedlensWarning,
            stacklevel=2,
        )
    return BeirDataset(corpus_ids, corpus_texts, queries, qrels, name, corpus_titles, corpus_bodies)


def data_name(data: DataSource) -> str:
    """How messages and reports name ``data``: its path, or the root / source a dataset was given."""
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    return str(getattr(data, "root", None) or getattr(data, "source", None) or "data")


def as_dataset(data: DataSource) -> BeirDataset | PairsDataset:
    """The dataset behind ``data``: read from a path, passed through, or built from a DataFrame of pairs.

    Raises:
        DataFormatError: a path that is neither a BEIR directory nor a pairs file, or malformed data.
        TypeError: an object that is none of these.
    """
    if isinstance(data, (BeirDataset, PairsDataset)):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_data(data)
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        return pairs_dataset(data)
    raise TypeError(
        f"data must be a path, a BeirDataset, a PairsDataset or a pandas DataFrame of pairs, got {type(data).__name__}"
        " (build one with embedlens.retrieval_dataset or embedlens.pairs_dataset)"
    )
