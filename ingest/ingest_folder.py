#!/usr/bin/env python3
"""Bring a knowledge base in step with a folder tree: the job a nightly cron runs.

    python ingest/ingest_folder.py ~/papers --kb ~/kbs/papers --prune

It is incremental: unchanged files are skipped by content hash, changed files replace
their old version, new files are added. With ``--prune``, documents whose files have
gone from the folder are removed too. It is resumable: documents are committed as
they are embedded, so after an interruption the next run picks up where the last one
stopped. Everything goes through :class:`ragqa.KnowledgeBase`.

Exit codes: 0 all files fine; 1 error; 3 some files failed (the rest are stored).
Example crontab line::

    0 2 * * *  cd /opt/ragqa && .venv/bin/python ingest/ingest_folder.py /srv/docs \
               --kb /srv/kb --prune --quiet --report /var/log/ragqa-ingest.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ragqa import KnowledgeBase, RagqaError, Settings
from ragqa.cli import EXIT_ERROR, add_store_argument, finish_folder_ingest, run_ingest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="Folder tree to ingest.")
    add_store_argument(parser)
    parser.add_argument("--pdf-password", help="Password for encrypted PDFs.")
    parser.add_argument(
        "--prune", action="store_true", help="Remove documents whose files are gone."
    )
    parser.add_argument("--report", type=Path, help="Also write the report as JSON here.")
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    args = parser.parse_args(argv)

    if not args.folder.is_dir():
        print(f"Error: {args.folder} is not a folder", file=sys.stderr)
        return EXIT_ERROR
    try:
        with KnowledgeBase.open_or_create(args.kb, settings=Settings.from_env()) as kb:
            report = run_ingest(kb, [args.folder], pdf_password=args.pdf_password, quiet=args.quiet)
            pruned = kb.remove_missing(args.folder) if args.prune else []
    except RagqaError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return finish_folder_ingest(report, pruned, args.folder, args.report)


if __name__ == "__main__":
    sys.exit(main())
