"""Evidence in the auditor's report: small pieces inline (each shown once), large pieces linked.

A record's evidence refers to files relative to the results JSON's folder (``evidence_base``). The
report links them relative to its own folder, so they open wherever the report and the evidence
folder are copied together. Small pieces (the ones the results JSON carries inline) are shown in
the report; a piece already shown earlier is not repeated: later mentions point back to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class EvidenceView:
    """One piece of evidence as the report shows it."""

    name: str
    chars: int
    anchor: str  # the id of the place where its text is shown inline (``ev-<file stem>``)
    href: str | None = None  # relative link to the file; None when it is not linked
    file_name: str = ""  # the file's name (shown when it is not linked)
    text: str | None = None  # shown inline here
    shown_earlier: bool = False  # inline text already shown at ``#anchor``
    missing: bool = False  # the file is not beside the results

    @property
    def inline(self) -> bool:
        """Whether its text is shown at this place."""
        return self.text is not None


class EvidenceLinker:
    """Decides, for each mention of a piece of evidence, whether to show, point back or link it."""

    def __init__(self, evidence_base: Path, report_dir: Path, self_contained: bool,
                 scrub: Callable[[str], str] = str) -> None:
        self.base = evidence_base
        self.report_dir = report_dir
        self.self_contained = self_contained
        self.scrub = scrub  # applied to inline text: machine paths down to file names
        self._shown: set[str] = set()
        self.linked_files: dict[str, int] = {}  # large pieces the report links (file -> characters)

    def view(self, piece: dict[str, Any], show_inline: bool = True) -> EvidenceView:
        """The view of one evidence reference of a record (``{name, file, chars, text?}``)."""
        file = str(piece.get("file") or "")
        name = str(piece.get("name") or "evidence")
        chars = int(piece.get("chars") or len(piece.get("text") or ""))
        anchor = "ev-" + _stem(file or name)
        text = piece.get("text")
        exists = bool(file) and (self.base / file).is_file()
        href = None if self.self_contained or not exists else self.href(file)
        base = EvidenceView(name, chars, anchor, href, PurePosixPath(file).name if file else "",
                            missing=bool(file) and not exists)
        if text is None:
            if file:
                self.linked_files[file] = chars
            return base
        if file in self._shown or not show_inline:
            return EvidenceView(**{**base.__dict__, "shown_earlier": file in self._shown})
        if file:
            self._shown.add(file)
        return EvidenceView(**{**base.__dict__, "text": self.scrub(str(text))})

    def href(self, file: str) -> str:
        """A link to ``evidence_base / file`` relative to the report's folder, URL-quoted."""
        target = os.path.relpath(self.base / file, self.report_dir)
        return quote(PurePosixPath(*Path(target).parts).as_posix())


def _stem(file: str) -> str:
    """A safe HTML id part from an evidence file name."""
    stem = PurePosixPath(file).stem
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)[:40] or "piece"
