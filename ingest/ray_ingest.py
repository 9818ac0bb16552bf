#!/usr/bin/env python3
"""Ingest a folder tree with Ray Data: parse and chunk in tasks, embed in an actor pool.

    python ingest/ray_ingest.py /mnt/docs --store milvus://milvus:19530/docs \\
        --address auto --embed-actors 8 --prune

The same job as ``ingest_folder.py``, spread over a Ray cluster (see
:mod:`ragqa.distributed`): incremental by content hash, resumable, and writing to
the configured store, Milvus or the embedded one, through
:class:`ragqa.KnowledgeBase`. Without ``--address`` it starts a Ray instance on this
machine with ``--num-cpus`` CPUs; inside a process that already called
``ray.init``, it uses that one.

Exit codes: 0 all files fine; 1 error; 3 some files failed (the rest are stored).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ragqa import KnowledgeBase, RagqaError, Settings
from ragqa.cli import EXIT_ERROR, add_store_argument, finish_folder_ingest, ingest_progress
from ragqa.distributed import FILES_PER_BATCH, ray_ingest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="Folder tree to ingest (readable by every node).")
    add_store_argument(parser)
    parser.add_argument("--address", help="Ray cluster to join, e.g. auto or ray://head:10001.")
    parser.add_argument("--num-cpus", type=int, help="CPUs of a Ray instance started here.")
    parser.add_argument("--embed-actors", type=int, help="Embedding actors (default: CPUs / 2).")
    parser.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs per embedding actor.")
    parser.add_argument(
        "--files-per-batch", type=int, default=FILES_PER_BATCH, help="Files per embedding call."
    )
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
        import ray
    except ImportError:
        print("Error: this script needs Ray Data: pip install 'ragqa[ray]'", file=sys.stderr)
        return EXIT_ERROR
    if not ray.is_initialized():
        ray.init(
            address=args.address,
            num_cpus=None if args.address else args.num_cpus,
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        with KnowledgeBase.open_or_create(args.kb, settings=Settings.from_env()) as kb:
            with ingest_progress(args.quiet) as on_progress:
                report = ray_ingest(
                    kb,
                    [args.folder],
                    pdf_password=args.pdf_password,
                    embed_actors=args.embed_actors,
                    actor_cpus=args.actor_cpus,
                    files_per_batch=args.files_per_batch,
                    progress=on_progress,
                )
            pruned = kb.remove_missing(args.folder) if args.prune else []
    except RagqaError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return finish_folder_ingest(report, pruned, args.folder, args.report)


if __name__ == "__main__":
    sys.exit(main())
