"""The approximate vector index: FAISS IVF-PQ, for large local knowledge bases.

From :data:`ragqa.stores.local.APPROXIMATE_FROM` chunks on (``auto``), the FAISS
file holds an IVF-PQ index rather than the exact vectors: about 48 bytes a vector
instead of 1,536, and a search that visits an eighth of the lists. Its estimates
only choose candidates; :class:`~ragqa.stores.local.LocalStore` re-scores
``max(IVF_RERANK_FACTOR * k, IVF_MIN_CANDIDATES)`` of them with their exact vectors
from the catalog. ``bench/query.py`` measures the recall these settings give.

Example:
    >>> import numpy as np
    >>> vectors = np.random.default_rng(0).standard_normal((IVF_MIN_TRAIN, 32), "float32")
    >>> index = build_ivfpq(32, len(vectors), lambda: iter([(np.arange(len(vectors)), vectors, [])]))
    >>> configure(index); index.ntotal, index.nprobe
    (10000, 32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "IVF_MIN_CANDIDATES",
    "IVF_MIN_TRAIN",
    "IVF_NPROBE_MIN",
    "IVF_NPROBE_SHARE",
    "IVF_RERANK_FACTOR",
    "build_ivfpq",
    "configure",
]

# IVF lists searched per query: an eighth of them, at least 32. On real MiniLM
# vectors of SQuAD and DRCD sentences, recall@10 against exact search rose from
# 0.92 with 8 % of the lists to 0.98 with 30 % (bench/query.py).
IVF_NPROBE_MIN = 32
IVF_NPROBE_SHARE = 1 / 8
# Candidates re-scored with their exact vectors: four per result wanted, at least
# 400. The PQ estimate only has to bring the right chunks among them; at a million
# clustered vectors recall@10 was 0.69 with 100 candidates and 0.96 with 400,
# whatever the number of lists probed.
IVF_RERANK_FACTOR = 4
IVF_MIN_CANDIDATES = 400
# IVF-PQ needs enough vectors to train its coarse quantizer and codebooks.
IVF_MIN_TRAIN = 10_000


def build_ivfpq(dimension: int, chunks: int, iter_chunks: Any) -> Any:
    """An IVF-PQ index over every chunk in the catalog.

    ``sqrt(n)`` inverted lists, trained on a sample of 40 vectors a list, and
    product quantization into one byte per 8 dimensions (48 bytes a vector
    instead of 1,536 at 384 dimensions). Ids are the chunk ids; IVF indexes keep
    them without an id map and support ``remove_ids``.
    """
    import faiss

    nlist = max(16, int(chunks**0.5))
    # k-means wants about 40 points per centroid, and PQ's 256 codes per
    # sub-quantizer want at least 10,000.
    m = next(
        m for m in (dimension // 8, 64, 48, 32, 24, 16, 8, 4, 2, 1) if m and dimension % m == 0
    )
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFPQ(quantizer, dimension, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    want = min(chunks, max(40 * nlist, 10_000))
    sample = []
    for ids, vectors, _ in iter_chunks():
        keep = rng.random(len(ids)) < want / chunks
        sample.append(vectors[keep])
    index.train(np.ascontiguousarray(np.vstack(sample)))
    for ids, vectors, _ in iter_chunks():
        index.add_with_ids(vectors, ids)
    return index


def configure(index: Any) -> None:
    """Search-time parameters, which FAISS does not keep in the file."""
    if hasattr(index, "nprobe"):
        index.nprobe = min(index.nlist, max(IVF_NPROBE_MIN, int(index.nlist * IVF_NPROBE_SHARE)))
