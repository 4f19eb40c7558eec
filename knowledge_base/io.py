"""Import/export file formats for the knowledge base: YAML (a list of entries) and CSV (lists joined by |)."""

from __future__ import annotations

import csv
import io
from typing import Any

import yaml

from core.errors import BadRequest

CSV_COLUMNS = [
    "key", "title", "category", "question", "alt_questions", "spoken_answer", "text_answer",
    "tags", "region", "valid_from", "valid_until", "status",
]
LIST_COLUMNS = {"alt_questions", "tags"}
MAX_ROWS = 20000


def parse(content: bytes, fmt: str) -> list[Any]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("file is not UTF-8 text") from None
    if fmt == "yaml":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadRequest(f"not valid YAML: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("entries"), list):
            data = data["entries"]
        if not isinstance(data, list):
            raise BadRequest("YAML import must be a list of entries (or a mapping with an 'entries' list)")
        rows = data
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        try:
            if not reader.fieldnames or "key" not in reader.fieldnames:
                raise BadRequest(f"CSV needs a header row with at least: {', '.join(CSV_COLUMNS[:6])}")
            rows = [_csv_row(r) for r in reader]
        except csv.Error as exc:  # e.g. a bare carriage return inside an unquoted field
            raise BadRequest(f"not valid CSV: {exc}") from None
    else:
        raise BadRequest("format must be yaml or csv")
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"at most {MAX_ROWS} rows per import")
    return rows


def _csv_row(row: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name is None:
            continue
        value = (value or "").strip()
        if name in LIST_COLUMNS:
            out[name] = [v.strip() for v in value.split("|") if v.strip()]
        elif name in ("valid_from", "valid_until"):
            out[name] = value or None
        elif value or name not in ("status", "region", "text_answer"):
            out[name] = value
    return out


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(rows, allow_unicode=True, sort_keys=False)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: "|".join(row[k]) if k in LIST_COLUMNS else ("" if row.get(k) is None else row[k]) for k in CSV_COLUMNS}
        )
    return buf.getvalue()
