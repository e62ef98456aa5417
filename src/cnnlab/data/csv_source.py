"""A CSV of ``path,label`` (optionally a header, optionally a third ``split`` column).

Relative paths are relative to the CSV's folder. Classes are the distinct labels, sorted
(numerically when every label is an integer). A ``split`` column with ``train``/``val``/``test``
values fixes the splits; otherwise they are drawn stratified.

    path,label
    img/cat1.jpg,cat
    img/dog1.jpg,dog
"""

from __future__ import annotations

import csv
from pathlib import Path

from cnnlab.data.folder import SPLIT_NAMES
from cnnlab.data.folder_source import CacheDir, files_to_raw
from cnnlab.data.progress import ProgressFn
from cnnlab.data.raw import RawData
from cnnlab.errors import DataError

_HEADER_WORDS = {"path", "file", "filename", "image", "filepath", "label", "class", "split"}


def read_csv_rows(path: Path) -> list[tuple[str, str, str]]:
    """``(file path, label, split)`` per row; split is ``all`` without a split column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' is not UTF-8 text ({exc}); save the CSV as UTF-8") from None
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = [r for r in csv.reader(text.splitlines(), dialect) if any(c.strip() for c in r)]
    if rows and {c.strip().lower() for c in rows[0]} & _HEADER_WORDS:
        rows = rows[1:]
    if not rows:
        raise DataError(f"'{path}' has no rows; expected lines of path,label (e.g. img/cat1.jpg,cat)")
    out = []
    for line, row in enumerate(rows, start=2):
        if len(row) not in (2, 3) or not row[0].strip() or not row[1].strip():
            raise DataError(f"'{path}' row {line - 1}: expected path,label[,split], got {row!r}")
        split = "all"
        if len(row) == 3:
            split = SPLIT_NAMES.get(row[2].strip().lower(), "")
            if not split:
                raise DataError(f"'{path}' row {line - 1}: split {row[2]!r} is not one of train, val, test")
        file = Path(row[0].strip())
        file = file if file.is_absolute() else path.parent / file
        out.append((str(file), row[1].strip(), split))
    splits = {s for _, _, s in out}
    if "all" in splits and len(splits) > 1:
        raise DataError(f"'{path}': some rows have a split column and some do not; give it on every row or none")
    return out


def sort_labels(labels: set[str]) -> list[str]:
    if all(lab.lstrip("-").isdigit() for lab in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def load_csv(path: Path, shape: tuple[int, int, int], resize: str, *,
             cache_dir: CacheDir, progress: bool | ProgressFn | None) -> RawData:
    """Decode the images a CSV lists (missing files are skipped with a reason)."""
    rows = read_csv_rows(path)
    classes = sort_labels({lab for _, lab, _ in rows})
    if len(classes) < 2:
        raise DataError(f"'{path}' has only one label ({classes[0]!r}); a classifier needs at least 2 classes")
    entries: dict[str, list[tuple[str, str]]] = {}
    for file, label, split in rows:
        entries.setdefault(split, []).append((file, label))
    if "all" not in entries and "train" not in entries:
        raise DataError(f"'{path}' has no rows with split 'train'")
    splits, skipped, stats_file = files_to_raw(entries, classes, shape, resize, cache_dir=cache_dir, progress=progress)
    desc = f"CSV '{path}' ({len(rows):,} rows, {len(classes)} classes)"
    return RawData(splits, classes, desc, str(path), skipped=sorted(skipped), shaped=True, stats_file=stats_file)
