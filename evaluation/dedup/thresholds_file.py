"""Writing tuned thresholds into the categories file: one dedup table replaced, everything else kept byte for byte."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from contract.categories import DedupThresholds, parse_catalog

TUNED_MARK = "# tuned:"
# The keys tune writes, in the order the file lists them; the rescues' keys are set by hand and kept as they are.
_DEDUP_KEYS = ("phash_max_distance", "dhash_edge_max_distance", "hsv_chi2_max")
_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")


def _header_name(line: str) -> str | None:
    match = _HEADER.match(line)
    return re.sub(r"\s*\.\s*", ".", match.group(1)) if match else None


def _format_value(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(round(float(value), 4))


def _table_span(lines: list[str], name: str) -> tuple[int, int] | None:
    """(header line, end) of table `name`; end is the next header line (or len)."""
    for h, line in enumerate(lines):
        if _header_name(line) == name:
            end = next((k for k in range(h + 1, len(lines)) if _header_name(lines[k]) is not None), len(lines))
            return h, end
    return None


def render_dedup_table(text: str, category: str | None, t: DedupThresholds, notes: Sequence[str]) -> str:
    """`text` (a categories file) with the dedup table of `category` (None: [defaults.dedup]) set to `t`.

    Everything else is kept byte for byte, including the table's own comments and each key's trailing comment;
    the previous `# tuned:` lines of that table are replaced by `notes`.
    """
    table = "defaults.dedup" if category is None else f"categories.{category}.dedup"
    values = {
        "phash_max_distance": t.phash_max_distance,
        "dhash_edge_max_distance": t.dhash_edge_max_distance,
        "hsv_chi2_max": float(t.hsv_chi2_max),
    }
    note_lines = [f"{TUNED_MARK} {note}\n" if note else f"{TUNED_MARK}\n" for note in notes]
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    span = _table_span(lines, table)
    if span is None:
        parent = "defaults" if category is None else f"categories.{category}"
        parent_span = _table_span(lines, parent)
        if parent_span is None:
            raise ValueError(f"no [{parent}] table to add [{table}] to")
        insert_at = parent_span[1]
        while insert_at > parent_span[0] + 1 and not lines[insert_at - 1].strip():
            insert_at -= 1
        block = ["\n", f"[{table}]\n", *note_lines, *(f"{key} = {_format_value(values[key])}\n" for key in _DEDUP_KEYS)]
        return "".join(lines[:insert_at] + block + lines[insert_at:])

    header, end = span
    body = [line for line in lines[header + 1 : end] if not line.lstrip().startswith(TUNED_MARK)]
    missing = list(_DEDUP_KEYS)
    for k, line in enumerate(body):
        match = re.match(r"^(\s*)([A-Za-z0-9_]+)(\s*=\s*)([^#\n]*?)(\s*)(#.*)?\n$", line)
        if match and match.group(2) in values:
            indent, key, equals, old, spaces, comment = match.groups()
            new = _format_value(values[key])
            if comment:  # keep the comment's column where the new value leaves room
                spaces = " " * max(1, len(old) + len(spaces) - len(new))
                body[k] = f"{indent}{key}{equals}{new}{spaces}{comment}\n"
            else:
                body[k] = f"{indent}{key}{equals}{new}\n"
            missing.remove(key)
    last_key = max((k for k, line in enumerate(body) if re.match(r"^\s*[A-Za-z0-9_]+\s*=", line)), default=-1)
    body[last_key + 1 : last_key + 1] = [f"{key} = {_format_value(values[key])}\n" for key in missing]
    first_key = next((k for k, line in enumerate(body) if re.match(r"^\s*[A-Za-z0-9_]+\s*=", line)), len(body))
    body[first_key:first_key] = note_lines
    return "".join(lines[: header + 1] + body + lines[end:])


def write_dedup_thresholds(path: Path, category: str | None, t: DedupThresholds, notes: Sequence[str]) -> list[str]:
    """Rewrite the dedup table in the categories file `path` (atomically), after checking that the result parses
    and yields `t`'s three tuned thresholds (the tone and framing rescues' keys are left as the file has them).
    Returns the categories whose own [<name>.dedup] table still overrides a field."""
    text = path.read_text(encoding="utf-8")
    new_text = render_dedup_table(text, category, t, notes)
    document = tomllib.loads(new_text)
    catalog = parse_catalog(document)
    table = document["defaults"]["dedup"] if category is None else document["categories"][category]["dedup"]
    written = {key: table[key] for key in _DEDUP_KEYS}
    if written != {key: getattr(t, key) for key in _DEDUP_KEYS}:
        raise AssertionError(f"rendered {written}, wanted {t}")
    resolved = catalog.resolve(category)[0].dedup
    if any(getattr(resolved, key) != getattr(t, key) for key in _DEDUP_KEYS):
        raise AssertionError(f"category {category!r} resolves to {resolved}, wanted {t}")
    shadowing = []
    if category is None:
        shadowing = [
            name
            for name, table in document.get("categories", {}).items()
            if set(table.get("dedup", {})) & set(_DEDUP_KEYS)
        ]
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, path)
    return shadowing
