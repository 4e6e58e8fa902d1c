"""Evidence stored once: each piece is written to a file beside the reports as it is produced.

Files are named by content (``<sha256 prefix>.txt``), so the same transcript attached to many
verdicts is written once. A record refers to its evidence by a path relative to the folder of the
results JSON; small pieces are also carried inline so a reader of the JSON alone sees them.
Everything that enters the store has passed through ``mailaudit.redact.redact`` first.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from mailaudit.redact import redact

INLINE_MAX_CHARS = 2000  # pieces up to this size are also kept inside the record
MAX_PIECE_CHARS = 2_000_000  # a larger piece is cut (the cut is said at its end)


@dataclass(frozen=True)
class EvidenceRef:
    """One piece of evidence: its name, where its file is, its size, and its text when small."""

    name: str
    file: str  # relative to the results JSON's folder, "/"-separated
    chars: int
    text: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON form (``text`` only when small)."""
        data = asdict(self)
        if self.text is None:
            del data["text"]
        return data


FILE_NAME = re.compile(r"^[0-9a-f]{20}\.txt$")


class EvidenceStore:
    """Writes evidence files into one folder (created on first use); thread-safe. The folder
    belongs to one results file: files a previous run left there are removed at the start."""

    def __init__(self, folder: Path, base: Path) -> None:
        self.folder, self.base = folder, base
        self._clear()
        self._lock = threading.Lock()
        self._written: set[str] = set()
        self._seen: dict[str, EvidenceRef] = {}  # digest of the raw text -> its stored reference

    def add(self, name: str, text: str) -> EvidenceRef:
        """Redact, store (once per content) and return the reference to one piece of evidence."""
        raw_digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
        with self._lock:
            seen = self._seen.get(raw_digest)
        if seen is not None:
            return EvidenceRef(name, seen.file, seen.chars, seen.text)
        ref = self._store(name, redact(text))
        with self._lock:
            self._seen[raw_digest] = ref
        return ref

    def _clear(self) -> None:
        """Remove the evidence files of an earlier run of the same name (only files of ours)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if FILE_NAME.match(path.name) and path.is_file():
                path.unlink()

    def _store(self, name: str, text: str) -> EvidenceRef:
        if len(text) > MAX_PIECE_CHARS:
            text = text[:MAX_PIECE_CHARS] + f"\n[… cut: evidence longer than {MAX_PIECE_CHARS} characters]"
        data = text.encode("utf-8", "replace")
        digest = hashlib.sha256(data).hexdigest()[:20]
        path = self.folder / f"{digest}.txt"
        with self._lock:
            if digest not in self._written:
                if not self._written:
                    self.folder.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                self._written.add(digest)
        relative = path.relative_to(self.base).as_posix()
        return EvidenceRef(name, relative, len(text), text if len(text) <= INLINE_MAX_CHARS else None)
