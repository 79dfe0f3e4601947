"""Results written as they come: a JSON-lines file beside the results file, one line per finished case.

``<out>.partial.jsonl`` starts with the run's metadata; every case appends its records as soon as it
finishes (flushed to disk), every named section (the GPU check's test results, say) its value. A run that
is killed keeps what it measured: ``python -m benchmarks.render <out>.partial.jsonl`` renders it. A run that
finishes writes the whole JSON document and removes the partial file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SCHEMA = "ganblocks-benchmarks/1"
PARTIAL_SUFFIX = ".partial.jsonl"

Record = dict[str, Any]


def partial_path(out: Path) -> Path:
    return out.with_name(out.stem + PARTIAL_SUFFIX)


class Sink:
    """Appends to ``partial_path(out)``: the metadata now, then :meth:`case` and :meth:`section` lines."""

    def __init__(self, out: Path, meta: Record) -> None:
        self.path = partial_path(out)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self._append({"kind": "meta", "schema": SCHEMA, "meta": meta})

    def _append(self, obj: Record) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(obj) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def case(self, case_id: str, records: list[Record], note: str = "") -> None:
        self._append({"kind": "case", "id": case_id, "note": note, "records": records})

    def section(self, key: str, value: Any) -> None:
        self._append({"kind": "section", "key": key, "value": value})

    def finish(self, doc: Record, out: Path) -> None:
        """Write the whole document to ``out`` (atomically), then drop the partial file."""
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(out)
        self.path.unlink(missing_ok=True)


def load_partial(path: Path) -> Record:
    """The results document of a partial file (``meta["partial"]`` is true; the last line may be cut)."""
    doc: Record = {"schema": SCHEMA, "meta": {}, "results": [], "notes": {}}
    for line in path.read_text().splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line the kill cut short
        if obj.get("kind") == "meta":
            doc["schema"] = obj.get("schema", SCHEMA)
            doc["meta"] = {**obj["meta"], "partial": True}
        elif obj.get("kind") == "case":
            doc["results"].extend(obj["records"])
            if obj.get("note"):
                doc["notes"][obj["id"]] = obj["note"]
        elif obj.get("kind") == "section":
            doc[obj["key"]] = obj["value"]
    return doc
