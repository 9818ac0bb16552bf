"""Files a browser uploads: checked, stored under a safe name, shown under their own.

Nothing a browser sends is trusted. An upload is checked before it is written (its
extension against its content), written atomically inside the knowledge base's
``uploads/`` folder and nowhere else, under a name that is safe on every file
system. The user still sees the name they uploaded, everywhere: a name that is
already safe is stored as it is (``pdfminer__naacl06-shinyama.pdf`` stays so), and
for the others :class:`UploadNames` remembers it in the knowledge base's folder.

:mod:`ragqa.workspace` re-exports the public names, where they were first defined.

Example:
    >>> safe_file_name("../季報 2024.PDF"), stored_file_name("a__b.pdf")
    ('季報_2024.pdf', 'a__b.pdf')
"""

from __future__ import annotations

import codecs
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragqa.errors import RagqaError

__all__ = [
    "MAX_FILE_NAME_BYTES",
    "NAMES_FILE",
    "UPLOAD_EXTENSIONS",
    "UPLOADS_DIR",
    "UploadNames",
    "UploadOutcome",
    "check_upload_content",
    "display_name",
    "safe_file_name",
    "stored_file_name",
]

UPLOAD_EXTENSIONS = (".pdf", ".txt", ".md", ".markdown")
UPLOADS_DIR = "uploads"
#: The uploaded names of files stored under another name, in the knowledge base's folder.
NAMES_FILE = "upload_names.json"
# Long enough for any real title, short enough that the full path stays far below
# the 255-byte limit most file systems put on one name.
MAX_FILE_NAME_BYTES = 150
# A PDF's header may follow some junk; readers look for it in the first KiB.
_PDF_HEADER_WINDOW = 1024
# How much of a text file is decoded to judge that it is text at all.
_TEXT_SAMPLE_BYTES = 256 * 1024
_SAFE_CHARS = "-_.()"
_SAFE_EXTENSION = re.compile(r"\.[a-z0-9]{1,8}")
WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {
    f"{p}{i}" for p in ("com", "lpt") for i in "123456789"
}


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one uploaded file before ingestion.

    ``status`` is ``"saved"`` (written to ``path``, ready to ingest), ``"duplicate"``
    (the same bytes are stored already, as ``existing``) or ``"rejected"`` (with a
    ``reason``: ``too_large``, ``too_many``, ``unsupported``, ``not_pdf``,
    ``not_text`` or ``empty``). ``name`` is the name the file was uploaded under.
    """

    name: str
    status: str
    content_hash: str = ""
    size: int = 0
    path: Path | None = None
    reason: str | None = None
    existing: str | None = None


def safe_file_name(name: str) -> str:
    """A file name that is safe to create inside a folder, kept readable.

    Only the last path component survives (browsers send bare names, but nothing
    from a browser is trusted), characters other than letters (any script),
    digits and ``-_.()`` become ``_``, leading dots go (no hidden files, no ``..``),
    the extension is lower-cased, and the name is cut to
    :data:`MAX_FILE_NAME_BYTES` bytes of UTF-8.

    Example:
        >>> safe_file_name("../../etc/passwd")
        'passwd'
        >>> safe_file_name("C:\\\\Users\\\\me\\\\季報 2024.PDF")
        '季報_2024.pdf'
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c if c.isalnum() or c in _SAFE_CHARS else "_" for c in name)
    name = re.sub(r"_+", "_", name).lstrip("._-")
    stem, ext = os.path.splitext(name)
    ext = ext.lower() if _SAFE_EXTENSION.fullmatch(ext.lower()) else ""
    stem = stem.rstrip(". ") or "upload"
    if stem.split(".")[0].lower() in WINDOWS_RESERVED:
        stem = f"_{stem}"
    budget = MAX_FILE_NAME_BYTES - len(ext.encode())
    while len(stem.encode("utf-8")) > budget:
        stem = stem[:-1]
    return stem + ext


def stored_file_name(name: str) -> str:
    """The name an upload is stored under: its own when that is already safe, else
    :func:`safe_file_name`'s.

    Already safe means what :func:`safe_file_name` would keep as it is, except that
    runs of underscores stay (``a__b.pdf`` is a fine name, and the user's own).

    Example:
        >>> stored_file_name("pdfminer__naacl06-shinyama.pdf"), stored_file_name("季報 2024.PDF")
        ('pdfminer__naacl06-shinyama.pdf', '季報_2024.pdf')
    """
    last = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return last if _is_safe_as_it_is(last) else safe_file_name(name)


def _is_safe_as_it_is(name: str) -> bool:
    stem, ext = os.path.splitext(name)
    return (
        name == unicodedata.normalize("NFC", name)
        and all(c.isalnum() or c in _SAFE_CHARS for c in name)
        and name[:1] not in ("", ".", "-")
        and bool(_SAFE_EXTENSION.fullmatch(ext))
        and bool(stem)
        and not stem.endswith(".")
        and stem.split(".")[0].lower() not in WINDOWS_RESERVED
        and len(name.encode("utf-8")) <= MAX_FILE_NAME_BYTES
    )


def display_name(raw_name: str) -> str:
    """The uploaded file's own name for the page: its last path component, without
    control or format characters (a right-to-left override could disguise it)."""
    name = (raw_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))
    return unicodedata.normalize("NFC", name) or "upload"


def check_upload_content(name: str, data: bytes) -> str | None:
    """Why an upload's content does not fit its extension, or None when it does.

    Returns:
        ``"unsupported"`` (not .pdf/.txt/.md), ``"empty"``, ``"not_pdf"`` (a .pdf
        without the ``%PDF-`` header) or ``"not_text"`` (a .txt/.md that does not
        decode as text).
    """
    ext = os.path.splitext(name.replace("\\", "/").rsplit("/", 1)[-1])[1].lower()
    if ext not in UPLOAD_EXTENSIONS:
        return "unsupported"
    if not data.strip():
        return "empty"
    if ext == ".pdf":
        return None if b"%PDF-" in data[:_PDF_HEADER_WINDOW] else "not_pdf"
    return None if _looks_like_text(data[:_TEXT_SAMPLE_BYTES]) else "not_text"


def _looks_like_text(sample: bytes) -> bool:
    """Whether ``sample`` (perhaps cut mid-character) decodes as real text."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    elif b"\x00" in sample:
        return False  # NUL bytes: binary, or UTF-16 without a BOM, which we do not guess
    else:
        encodings = ["utf-8-sig"]
        from charset_normalizer import from_bytes

        best = from_bytes(sample).best()
        if best is not None:
            encodings.append(best.encoding)
    for encoding in encodings:
        try:
            # An incremental decoder tolerates a character cut at the sample's end.
            text = codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
        except (UnicodeDecodeError, LookupError):
            continue
        controls = sum(
            1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f\v\x1b"
        )
        if text.strip() and controls <= max(1, len(text) // 100):
            return True
    return False


class UploadNames:
    """The names uploads were given by their users, for those stored under another.

    A JSON object ``{stored file name: uploaded name}`` in the knowledge base's
    folder (:data:`NAMES_FILE`), changed under a file lock and replaced atomically,
    so sessions that upload at the same time neither lose an entry nor read half a
    file. A file stored under its own name has no entry.

    Args:
        kb_directory: the knowledge base's folder; its uploads are in ``uploads/``.
    """

    def __init__(self, kb_directory: str | os.PathLike[str]) -> None:
        self.directory = Path(kb_directory)
        self.uploads = self.directory / UPLOADS_DIR
        self.path = self.directory / NAMES_FILE

    def load(self) -> dict[str, str]:
        """The map as stored; empty when there is none or it cannot be read (it only
        names files, so the stored names are a fair fallback)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str) and v}

    def name_of(self, source: str, names: dict[str, str] | None = None) -> str:
        """The name to show for a stored document: its uploaded name if it is one of
        this knowledge base's uploads and was renamed, else its file name.

        Args:
            source: the document's stored path (``DocumentInfo.source``, ``Hit.source``).
            names: the map from :meth:`load`, when several names are looked up at once.
        """
        path = Path(source)
        if names is None:
            names = self.load()
        if path.name in names and _same_folder(path.parent, self.uploads):
            return names[path.name]
        return path.name

    def lookup(self) -> Callable[[str], str]:
        """:meth:`name_of` with the map read once: for naming many sources (the hits
        of one search) without listing the knowledge base's documents."""
        names = self.load()
        return lambda source: self.name_of(source, names)

    def claim(self, shown: str, wanted: str) -> str:
        """A free stored name for an upload called ``shown``, recorded in the map.

        ``wanted`` (from :func:`stored_file_name`) is taken unless a file of another
        uploaded name holds it already (``a b.pdf`` and ``a_b.pdf`` are both stored
        as ``a_b.pdf`` otherwise); then ``-2``, ``-3``... is added to its stem. A new
        version of the same upload gets the same name, so it replaces the old one.
        """
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.directory / f".{NAMES_FILE}.lock")):
            names = self.load()
            stem, ext = os.path.splitext(wanted)
            candidate, number = wanted, 1
            while (self.uploads / candidate).exists() and names.get(candidate, candidate) != shown:
                number += 1
                suffix = f"-{number}{ext}"
                cut = stem
                while len((cut + suffix).encode("utf-8")) > MAX_FILE_NAME_BYTES:
                    cut = cut[:-1]
                candidate = cut + suffix
            # Held for this upload before the lock goes: another session uploading a
            # different file of the same safe name at the same time gets the next one.
            self.uploads.mkdir(parents=True, exist_ok=True)
            (self.uploads / candidate).touch(exist_ok=True)
            if candidate != shown:
                names[candidate] = shown
            elif candidate in names:
                del names[candidate]
            else:
                return candidate
            self._save(names)
        return candidate

    def forget(self, stored: str) -> None:
        """Drop the entry of a stored file (it has been deleted)."""
        from filelock import FileLock

        if not self.path.exists():
            return
        with FileLock(str(self.directory / f".{NAMES_FILE}.lock")):
            names = self.load()
            if names.pop(stored, None) is not None:
                self._save(names)

    def _save(self, names: dict[str, str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{NAMES_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(names, fh, ensure_ascii=False, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (resolved) is inside ``folder``."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def write_inside(folder: Path, file_name: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/file_name`` atomically, refusing to leave ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name
    # stored_file_name already guarantees this; checked again because a mistake here
    # would let a browser write anywhere the server can. (Not with resolve(): that
    # would follow a symlink at the target, which os.replace below replaces anyway.)
    if file_name in ("", ".", "..") or "/" in file_name or "\\" in file_name:
        # A bug upstream, never a user's doing; still a RagqaError, so the page shows it.
        raise RagqaError(f"refusing to write {file_name!r} outside {folder}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # os.replace swaps the directory entry, so a symlink planted at the target
        # is replaced, never written through.
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
