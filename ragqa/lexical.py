"""Word matching: an Okapi BM25 index over the terms of :func:`ragqa.tokenizer.tokenize`.

Dense retrieval with the default embedding model is nearly blind to Chinese (most
characters become ``[UNK]``), so ragqa also matches words. :func:`tokenize` (in
:mod:`ragqa.tokenizer`, re-exported here) turns a chunk or a query into index terms,
and :class:`BM25Index` ranks chunks by them. Jieba's words plus character unigrams
and bigrams make about 3 times the postings of jieba's words alone, which
:meth:`BM25Index.search` offsets by pruning.

Example:
    >>> index = BM25Index()
    >>> index.add([1, 2], [tokenize("茶起源於中國"), tokenize("Tea comes from China")])
    >>> [chunk_id for chunk_id, _ in index.search(tokenize("茶的起源"), k=5)]
    [1]
    >>> [chunk_id for chunk_id, _ in index.search(tokenize("Where is tea from?"), k=5)]
    [2]
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragqa.errors import IndexCorruptError
from ragqa.tokenizer import TOKENIZER_VERSION, to_simplified, tokenize

__all__ = ["TOKENIZER_VERSION", "BM25Index", "to_simplified", "tokenize"]


_FORMAT = "ragqa-bm25"
_FORMAT_VERSION = 1


# ------------------------------------------------------------------------- index


@dataclass(frozen=True)
class _Segment:
    """The postings of some documents, grouped by term (compressed sparse rows).

    The postings of ``terms[i]`` are ``slots[indptr[i]:indptr[i + 1]]``, in
    increasing slot order, with term frequencies ``tfs[...]``.
    """

    terms: np.ndarray  # int32, sorted, unique
    indptr: np.ndarray  # int64, len(terms) + 1
    slots: np.ndarray  # int32; with tfs, 8 bytes a posting: the bulk of the memory
    tfs: np.ndarray  # int32

    @property
    def size(self) -> int:
        return len(self.slots)

    @functools.cached_property
    def slot_range(self) -> tuple[int, int]:
        """The lowest and highest slot here: segments hold consecutive ranges."""
        return (int(self.slots.min()), int(self.slots.max())) if self.size else (0, -1)


@dataclass(frozen=True)
class _QueryTerm:
    weight: float  # idf times how often the query repeats the term
    df: int  # live documents that contain the term
    postings: list[tuple[np.ndarray, np.ndarray]]  # (slots, tfs), one pair a segment
    removed: np.ndarray  # slots of removed chunks left in the postings (see _live_postings)


class BM25Index:
    """An incremental Okapi BM25 index over integer chunk ids.

    Each document occupies a *slot* (a position in the per-document arrays). Its
    postings go into an immutable segment, one per ``add`` call; segments of
    similar size are merged as they accumulate, so there are never more than
    about log2(postings) of them and each posting is re-sorted O(log n) times.

    ``remove`` only marks slots dead, so it costs nothing per posting. Queries
    ignore dead slots, and count document frequencies over live postings only,
    so df, the document count N and the average length always describe exactly
    the documents present. Dead postings are dropped when segments merge, and
    all at once when a quarter of the slots are dead.

    Scores use Lucene's non-negative IDF, ``ln(1 + (N - df + 0.5) / (df + 0.5))``:
    Robertson's original goes negative for terms in more than half the
    documents, which in a small knowledge base would make a common word count
    against a match.

    Args:
        k1: term-frequency saturation; 1.2 is Lucene's default.
        b: length normalisation, between 0 and 1; 0.75 is the usual default.
            On the tuning halves of DRCD and SQuAD, no k1 in 0.9-2.0 with b in
            0.5-0.9 beat these defaults by more than 0.003 MRR@10.

    Example:
        >>> index = BM25Index()
        >>> index.add([10, 11], [["green", "tea"], ["black", "tea", "tea"]])
        >>> [i for i, _ in index.search(["green", "tea"], k=2)]
        [10, 11]
        >>> index.remove([10])
        >>> len(index), 10 in index
        (1, False)
    """

    # Before scoring a term whose postings cover at least this share of the
    # documents, search() checks whether pruning can skip most of them. Checking
    # costs a partition of one term's chunks, so it pays from short lists on:
    # interleaved at a million chunks over 300 SQuAD and DRCD questions, p50 9.9 ms
    # with 1/64, 10.8 with 1/32 and 12.6 with 1/16, against 16.4 for the scan of
    # every scored chunk this replaced, with the same results.
    _prune_check_share = 1 / 64
    # A posting list with more than this many postings per removed chunk in its
    # range is searched for the removed ones rather than masked (_live_postings).
    _dead_lookup_ratio = 16

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        if not (math.isfinite(k1) and k1 >= 0):
            raise ValueError(f"k1 must be a non-negative number, not {k1!r}")
        if not (math.isfinite(b) and 0.0 <= b <= 1.0):
            raise ValueError(f"b must be between 0 and 1, not {b!r}")
        self.k1 = float(k1)
        self.b = float(b)
        self._vocab: dict[str, int] = {}  # term -> term id
        self._terms: list[str] = []  # term id -> term
        self._segments: list[_Segment] = []
        self._slot_of: dict[int, int] = {}  # chunk id -> slot, live documents only
        self._ids = np.zeros(0, dtype=np.int64)  # slot -> chunk id
        self._lengths = np.zeros(0, dtype=np.float64)  # slot -> length in tokens
        self._alive = np.zeros(0, dtype=bool)
        self._dead = np.zeros(0, dtype=np.int64)  # sorted slots removed since compaction
        self._slots_used = 0
        self._total_length = 0.0
        self._norm: np.ndarray | None = None  # per slot, see _length_norm()

    # --------------------------------------------------------------- queries

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._slot_of

    def search(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` best-scoring chunks for these query terms, best first.

        A repeated query term counts once per repeat. Chunks that share no term
        with the query score zero and are not returned. Equal scores are ordered
        by chunk id, so results are deterministic.

        Args:
            query_tokens: terms from :func:`tokenize`.
            k: the most results to return.

        Returns:
            ``(chunk id, score)`` pairs.

        Example:
            >>> index = BM25Index()
            >>> index.add([1, 2, 3], [["a", "b"], ["b", "c"], ["c"]])
            >>> [i for i, _ in index.search(["a", "b"], k=10)]
            [1, 2]
        """
        n_docs = len(self._slot_of)
        if k <= 0 or n_docs == 0:
            return []
        repeats = Counter(t for t in query_tokens if t in self._vocab)
        terms = [t for t in self._query_terms(repeats, n_docs) if t.df]
        if not terms:
            return []

        # Exact top-k with MaxScore pruning (Turtle & Flood, 1995). Terms are
        # scored from the highest possible contribution down, so the rare terms,
        # with short posting lists, come first. Before each term with a long
        # list, theta is the k-th best score so far (a lower bound on the final
        # k-th score) and ``remaining`` bounds what this and all later terms can
        # still add to any chunk. A chunk below ``theta - remaining`` can never
        # reach the top k, so from then on only the chunks above it (the
        # candidates) are looked up in the remaining lists, and the candidates
        # are thinned again before each later term.
        #
        # theta comes from the chunks of one term already scored in full (the last
        # with at least k of them), not from every chunk scored so far: the k-th
        # best of any k chunks is a lower bound on the k-th best of all, and the
        # chunks of a query's rarer terms hold its best. At a million chunks
        # that spares a scan and a partition of the hundreds of thousands of
        # chunks a Chinese question's characters have scored by then.
        terms.sort(key=lambda term: -term.weight)
        saturation = self.k1 + 1.0  # tf * (k1 + 1) / (tf + K) stays below k1 + 1
        remaining = sum(term.weight for term in terms) * saturation
        norm = self._length_norm()
        scores = np.zeros(self._slots_used)
        candidates: np.ndarray | None = None
        is_candidate: np.ndarray | None = None  # candidates as a mask, built on demand
        next_check = math.inf  # try pruning once remaining falls below this
        probe: list[np.ndarray] = []  # the chunks theta is taken from (see above)
        for term in terms:
            if candidates is not None:
                # Thin the candidates: theta only rises and remaining only falls.
                floor = _kth_largest(scores[candidates], k) * (1 - 1e-9) - remaining
                candidates = candidates[scores[candidates] >= floor]
                is_candidate = None
            elif remaining < next_check and term.df >= max(k, n_docs * self._prune_check_share):
                # Slots are unique within one term's lists: k of them are k chunks.
                theta = _kth_largest(scores[np.concatenate(probe)], k) if probe else 0.0
                # A hair of slack keeps rounding from dropping a chunk that ties.
                floor = theta * (1 - 1e-9) - remaining
                if floor > 0:
                    candidates = np.flatnonzero(scores >= floor)
                else:  # theta rises slowly: wait until remaining has come closer
                    next_check = (remaining + theta) / 2
            if candidates is None and term.df >= k:
                probe = [slots for slots, _ in term.postings]
            for slots, tfs in term.postings:
                if candidates is None:
                    hit, tf = slots, tfs
                elif len(candidates) * 16 < len(slots):  # few candidates: binary search
                    at = np.minimum(np.searchsorted(slots, candidates), len(slots) - 1)
                    found = slots[at] == candidates
                    hit, tf = candidates[found], tfs[at[found]]
                else:  # many candidates: one pass over the list with a mask
                    if is_candidate is None:
                        is_candidate = np.zeros(self._slots_used, dtype=bool)
                        is_candidate[candidates] = True
                    keep = is_candidate[slots]
                    hit, tf = slots[keep], tfs[keep]
                # Slots are unique within one term's list, so += adds once each.
                scores[hit] += term.weight * tf * saturation / (tf + norm[hit])
            if len(term.removed):  # before anything reads the scores
                scores[term.removed] = 0.0
            remaining -= term.weight * saturation

        if candidates is None:
            candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            # Keep everything tied with the k-th score, then break ties by id.
            cut = len(candidates) - k
            kth = np.partition(scores[candidates], cut)[cut]
            candidates = candidates[scores[candidates] >= kth]
        best = candidates[np.lexsort((self._ids[candidates], -scores[candidates]))[:k]]
        return [(int(i), float(s)) for i, s in zip(self._ids[best], scores[best], strict=True)]

    def _query_terms(self, repeats: Counter[str], n_docs: int) -> list[_QueryTerm]:
        """Each query term's live postings, document frequency and weight."""
        term_ids = np.fromiter((self._vocab[t] for t in repeats), dtype=np.int32)
        postings: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in term_ids]
        # Slots of removed chunks left in each term's lists.
        kept: list[list[np.ndarray]] = [[] for _ in term_ids]
        for segment in self._segments:
            dead = self._dead
            if len(dead):  # removed chunks keep their postings until compaction
                low, high = segment.slot_range
                dead = dead[np.searchsorted(dead, low) : np.searchsorted(dead, high, "right")]
            at = np.searchsorted(segment.terms, term_ids)
            at[at == len(segment.terms)] = 0
            for q in np.flatnonzero(segment.terms[at] == term_ids):
                lo, hi = segment.indptr[at[q]], segment.indptr[at[q] + 1]
                slots, tfs = segment.slots[lo:hi], segment.tfs[lo:hi]
                if len(dead) and len(slots):
                    slots, tfs, removed = self._live_postings(slots, tfs, dead)
                    kept[q].append(removed)
                if len(slots):
                    postings[q].append((slots, tfs))
        terms = []
        for repeat, lists, removed in zip(repeats.values(), postings, kept, strict=True):
            gone = np.concatenate(removed) if removed else _NO_SLOTS
            df = sum(len(slots) for slots, _ in lists) - len(gone)
            idf = math.log1p((n_docs - df + 0.5) / (df + 0.5))
            terms.append(_QueryTerm(repeat * idf, df, lists, gone))
        return terms

    def _live_postings(
        self, slots: np.ndarray, tfs: np.ndarray, dead: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One posting list, and the slots of removed chunks still in it.

        ``dead`` holds the removed slots in the list's segment. Filtering every
        list through the alive mask copies it, and after a single removal that
        made every query at 100k chunks half as slow again. So a long list is
        returned as it is, with the removed slots found in it by binary search:
        the document frequency leaves them out, and ``search`` sets their scores
        back to zero after the term. Lists that are short next to the removals
        are filtered.
        """
        if len(dead) * self._dead_lookup_ratio < len(slots):
            at = np.minimum(np.searchsorted(slots, dead), len(slots) - 1)
            return slots, tfs, dead[slots[at] == dead]
        live = self._alive[slots]
        return slots[live], tfs[live], _NO_SLOTS

    def _length_norm(self) -> np.ndarray:
        """``k1 * (1 - b + b * length / average length)`` for every slot.

        Cached, because it depends only on the documents present and every
        query needs it; any change to the index drops the cache.
        """
        if self._norm is None:
            average = self._total_length / len(self._slot_of) or 1.0
            lengths = self._lengths[: self._slots_used]
            self._norm = self.k1 * (1.0 - self.b + self.b * lengths / average)
        return self._norm

    # --------------------------------------------------------------- changes

    def add(self, ids: Sequence[int], token_lists: Sequence[Sequence[str]]) -> None:
        """Index documents under new chunk ids.

        Costs time proportional to the new documents' tokens (plus, amortised, a
        logarithmic number of segment merges), never a rebuild.

        Args:
            ids: chunk ids not yet in the index, no repeats.
            token_lists: each document's terms, as from :func:`tokenize`. An
                empty list is allowed: the document counts but never matches.

        Raises:
            ValueError: lengths differ, or an id repeats or is already indexed.
        """
        if len(ids) != len(token_lists):
            raise ValueError(f"{len(ids)} ids but {len(token_lists)} token lists")
        new_ids = [int(i) for i in ids]
        if len(set(new_ids)) != len(new_ids):
            raise ValueError("ids must be unique")
        present = [i for i in new_ids if i in self._slot_of]
        if present:
            raise ValueError(f"already indexed: {present[:5]}")
        if not new_ids:
            return

        first, end = self._slots_used, self._slots_used + len(new_ids)
        term_ids: list[int] = []
        tfs: list[int] = []
        slots: list[int] = []
        lengths = np.zeros(len(new_ids), dtype=np.float64)
        vocab, vocab_terms = self._vocab, self._terms
        for offset, tokens in enumerate(token_lists):
            counts = Counter(tokens)
            lengths[offset] = sum(counts.values())
            for term, tf in counts.items():
                term_id = vocab.get(term)
                if term_id is None:
                    term_id = vocab[term] = len(vocab)
                    vocab_terms.append(term)
                term_ids.append(term_id)
                tfs.append(tf)
            slots.extend([first + offset] * len(counts))

        self._reserve(end)
        self._ids[first:end] = new_ids
        self._lengths[first:end] = lengths
        self._alive[first:end] = True
        self._slots_used = end
        self._total_length += float(lengths.sum())
        self._slot_of.update(zip(new_ids, range(first, end), strict=True))
        self._norm = None
        if term_ids:
            self._segments.append(
                _make_segment(
                    np.array(term_ids, dtype=np.int32),
                    np.array(slots, dtype=np.int32),
                    np.array(tfs, dtype=np.int32),
                )
            )
            self._merge_similar_segments()

    def remove(self, ids: Iterable[int]) -> None:
        """Take chunks out of the index; ids that are not in it are ignored.

        Costs time proportional to the number of ids (plus, amortised, the
        occasional compaction), never a rebuild.
        """
        gone = [self._slot_of.pop(int(i)) for i in ids if int(i) in self._slot_of]
        if not gone:
            return
        gone_slots = np.array(gone, dtype=np.int64)
        self._alive[gone_slots] = False
        self._dead = np.union1d(self._dead, gone_slots)
        self._total_length -= float(self._lengths[gone_slots].sum())
        if not self._slot_of:
            self._total_length = 0.0  # no rounding residue in an empty index
        self._norm = None
        if (self._slots_used - len(self._slot_of)) * 4 > self._slots_used:
            self._compact()

    # ------------------------------------------------------------ persistence

    def save(self, path: Path, *, atomic: bool = True) -> None:
        """Write the index to ``path`` atomically (temp file, fsync, rename).

        With ``atomic=False`` it writes ``path`` itself (and fsyncs it): for a
        caller that writes to a temporary name of its own and renames later.

        The file is a NumPy ``.npz`` archive of plain arrays, never pickles, so
        loading a damaged or hostile file cannot run code.

        Example:
            >>> index = BM25Index()
            >>> index.add([7], [["tea"]])
            >>> index.save(tmp / "lexical.npz")  # doctest: +SKIP
            >>> BM25Index.load(tmp / "lexical.npz").search(["tea"], k=1)  # doctest: +SKIP
            [(7, 0.28768207245178085)]
        """
        path = Path(path)
        arrays = self._to_arrays()
        if not atomic:
            with open(path, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            return
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        """Read an index written by :meth:`save`.

        Raises:
            IndexCorruptError: the file is missing, truncated, not a BM25 index,
                from another format version, or internally inconsistent.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                if not isinstance(archive, np.lib.npyio.NpzFile):
                    raise ValueError("not an .npz archive")
                arrays = {name: archive[name] for name in archive.files}
        except FileNotFoundError:
            raise IndexCorruptError(f"{path}: the lexical index file is missing") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(
                f"{path}: not a readable lexical index ({type(exc).__name__}: {exc})"
            ) from None
        try:
            return cls._from_arrays(arrays)
        except _Invalid as exc:
            raise IndexCorruptError(f"{path}: damaged lexical index: {exc}") from None

    def _to_arrays(self) -> dict[str, np.ndarray]:
        """The live documents, their segments as they are, and the terms they use.

        Segments are written unmerged: merging them would re-sort every posting,
        which costs several times more than writing the file.
        """
        self._compact()
        used = (
            np.unique(np.concatenate([segment.terms for segment in self._segments]))
            if self._segments
            else np.zeros(0, dtype=np.int32)
        )
        # Terms whose chunks were all removed stay in memory but not in the file;
        # the others are renumbered in their old order, so segments stay sorted.
        terms = [self._terms[i] for i in used.tolist()]
        offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum([len(t) for t in terms], out=offsets[1:])
        text = "".join(terms).encode("utf-8", "surrogatepass")
        segments = self._segments
        n_docs = self._slots_used

        def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

        return {
            "format": np.array(_FORMAT),
            "version": np.array([_FORMAT_VERSION], dtype=np.int64),
            "params": np.array([self.k1, self.b], dtype=np.float64),
            "ids": self._ids[:n_docs],
            "lengths": self._lengths[:n_docs].astype(np.int64),
            "vocab": np.frombuffer(text, dtype=np.uint8),
            "vocab_offsets": offsets,
            "segment_sizes": np.array(
                [(len(s.terms), s.size) for s in segments], dtype=np.int64
            ).reshape(-1, 2),
            "terms": joined([np.searchsorted(used, s.terms) for s in segments], np.int32),
            "indptr": joined([s.indptr[1:] for s in segments], np.int64),
            "slots": joined([s.slots for s in segments], np.int32),
            "tfs": joined([s.tfs for s in segments], np.int32),
        }

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> BM25Index:
        expected = {
            "format", "version", "params", "ids", "lengths", "vocab", "vocab_offsets",
            "segment_sizes", "terms", "indptr", "slots", "tfs",
        }  # fmt: skip
        if set(arrays) != expected:
            raise _Invalid(f"unexpected arrays {sorted(set(arrays) ^ expected)}")
        if arrays["format"].shape != () or str(arrays["format"]) != _FORMAT:
            raise _Invalid("not a ragqa BM25 index")
        version = _vector(arrays, "version", "i")
        if len(version) != 1 or version[0] != _FORMAT_VERSION:
            raise _Invalid(
                f"format version {version.tolist()} is not {_FORMAT_VERSION}; "
                "it was written by another version of ragqa"
            )
        params = _vector(arrays, "params", "f")
        if len(params) != 2:
            raise _Invalid("params must hold k1 and b")
        try:
            index = cls(k1=float(params[0]), b=float(params[1]))
        except ValueError as exc:
            raise _Invalid(str(exc)) from None

        ids = _vector(arrays, "ids", "i").astype(np.int64)
        lengths = _vector(arrays, "lengths", "i").astype(np.int64)
        offsets = _vector(arrays, "vocab_offsets", "i").astype(np.int64)
        sizes = arrays["segment_sizes"]
        terms = _vector(arrays, "terms", "i").astype(np.int64)
        indptr = _vector(arrays, "indptr", "i").astype(np.int64)
        slots = _vector(arrays, "slots", "i").astype(np.int64)
        tfs = _vector(arrays, "tfs", "i").astype(np.int64)
        blob = _vector(arrays, "vocab", "u")
        n_docs, n_terms = len(ids), len(offsets) - 1

        if len(lengths) != n_docs or len(np.unique(ids)) != n_docs:
            raise _Invalid("document ids and lengths disagree, or ids repeat")
        if n_terms < 0 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            raise _Invalid("vocabulary offsets are not increasing from 0")
        if sizes.ndim != 2 or sizes.shape[1] != 2 or (sizes.size and sizes.dtype.kind != "i"):
            raise _Invalid(f"segment sizes have shape {sizes.shape} and type {sizes.dtype}")
        if np.any(sizes < 1) or sizes[:, 0].sum() != len(terms) or len(indptr) != len(terms):
            raise _Invalid("segment sizes do not match the term arrays")
        if sizes[:, 1].sum() != len(slots) or len(tfs) != len(slots):
            raise _Invalid("segment sizes do not match the posting arrays")
        if len(slots) and (slots.min() < 0 or slots.max() >= n_docs or tfs.min() < 1):
            raise _Invalid("a posting points outside the documents or has no count")
        if len(terms) and (terms.min() < 0 or terms.max() >= n_terms):
            raise _Invalid("a term id is outside the vocabulary")

        segments = []
        term_start = posting_start = 0
        previous_high = -1
        for segment_terms, segment_postings in sizes.tolist():
            seg_terms = terms[term_start : term_start + segment_terms]
            seg_indptr = np.r_[0, indptr[term_start : term_start + segment_terms]]
            seg_slots = slots[posting_start : posting_start + segment_postings]
            term_start += segment_terms
            posting_start += segment_postings
            if np.any(np.diff(seg_terms) <= 0):
                raise _Invalid("a segment's terms are not sorted")
            if np.any(np.diff(seg_indptr) <= 0) or seg_indptr[-1] != segment_postings:
                raise _Invalid("a segment has a term without postings, or too many")
            # Within a term, postings strictly increase by document: no repeats.
            step_ok = np.diff(seg_slots) > 0
            step_ok[seg_indptr[1:-1] - 1] = True  # a new term may start anywhere
            if not step_ok.all():
                raise _Invalid("a term lists the same document twice")
            # Segments hold consecutive ranges of documents, oldest first, so a
            # document's postings are all in one segment.
            if seg_slots.min() <= previous_high:
                raise _Invalid("segments overlap")
            previous_high = int(seg_slots.max())
            seg_tfs = tfs[posting_start - segment_postings : posting_start]
            segments.append(
                _Segment(
                    seg_terms.astype(np.int32),
                    seg_indptr,
                    seg_slots.astype(np.int32),
                    seg_tfs.astype(np.int32),
                )
            )
        # Each document's length is the sum of its term frequencies.
        if not np.array_equal(np.bincount(slots, weights=tfs, minlength=n_docs), lengths):
            raise _Invalid("document lengths do not match the postings")
        try:
            text = blob.tobytes().decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _Invalid("the vocabulary is not UTF-8") from None
        if offsets[-1] != len(text):
            raise _Invalid("the vocabulary offsets do not match its text")
        bounds = offsets.tolist()
        vocab_terms = [text[bounds[i] : bounds[i + 1]] for i in range(n_terms)]
        vocab = dict(zip(vocab_terms, range(n_terms), strict=True))
        if len(vocab) != n_terms:
            raise _Invalid("a term appears twice in the vocabulary")

        index._vocab, index._terms = vocab, vocab_terms
        index._reserve(n_docs)
        index._ids[:n_docs] = ids
        index._lengths[:n_docs] = lengths
        index._alive[:n_docs] = True
        index._slots_used = n_docs
        index._total_length = float(lengths.sum())
        index._slot_of = dict(zip(ids.tolist(), range(n_docs), strict=True))
        index._segments = segments
        return index

    # --------------------------------------------------------------- internals

    def _reserve(self, capacity: int) -> None:
        if capacity <= len(self._ids):
            return
        size = max(capacity, 2 * len(self._ids), 64)
        for name in ("_ids", "_lengths", "_alive"):
            old = getattr(self, name)
            grown = np.zeros(size, dtype=old.dtype)
            grown[: len(old)] = old
            setattr(self, name, grown)

    def _merge_similar_segments(self) -> None:
        # Merge the newest segment into its predecessor while they are of similar
        # size, as in a binary counter: the sizes then at least halve from oldest
        # to newest, so there are O(log n) segments.
        segments = self._segments
        while len(segments) > 1 and segments[-2].size <= 2 * segments[-1].size:
            newer = segments.pop()
            segments[-1] = self._merge(segments[-1], newer)
        if segments and not segments[-1].size:
            segments.pop()

    def _merge(self, *parts: _Segment) -> _Segment:
        """One segment with the live postings of ``parts`` (oldest first)."""
        terms = np.concatenate([np.repeat(p.terms, np.diff(p.indptr)) for p in parts])
        slots = np.concatenate([p.slots for p in parts])
        tfs = np.concatenate([p.tfs for p in parts])
        live = self._alive[slots]
        if not live.all():
            terms, slots, tfs = terms[live], slots[live], tfs[live]
        return _make_segment(terms, slots, tfs)

    def _compact(self) -> None:
        """Drop dead slots and their postings; renumber the live slots in order."""
        if self._slots_used == len(self._slot_of):
            return
        live = np.flatnonzero(self._alive[: self._slots_used])
        new_slot = np.full(self._slots_used, -1, dtype=np.int32)
        new_slot[live] = np.arange(len(live), dtype=np.int32)
        segments = []
        for segment in self._segments:
            keep = self._alive[segment.slots]
            if keep.all():
                terms, indptr, slots, tfs = (
                    segment.terms,
                    segment.indptr,
                    segment.slots,
                    segment.tfs,
                )
            elif keep.any():
                # Filtering keeps the order, so no re-sort: count what each term keeps.
                per_term = np.repeat(np.arange(len(segment.terms)), np.diff(segment.indptr))
                counts = np.bincount(per_term[keep], minlength=len(segment.terms))
                terms = segment.terms[counts > 0]
                indptr = np.zeros(len(terms) + 1, dtype=np.int64)
                np.cumsum(counts[counts > 0], out=indptr[1:])
                slots, tfs = segment.slots[keep], segment.tfs[keep]
            else:
                continue
            segments.append(_Segment(terms, indptr, new_slot[slots], tfs))
        self._segments = segments
        self._ids = self._ids[live]
        self._lengths = self._lengths[live]
        self._alive = np.ones(len(live), dtype=bool)
        self._dead = np.zeros(0, dtype=np.int64)
        self._slots_used = len(live)
        self._slot_of = dict(zip(self._ids.tolist(), range(len(live)), strict=True))
        self._norm = None


_NO_SLOTS = np.zeros(0, dtype=np.int64)


def _kth_largest(values: np.ndarray, k: int) -> float:
    return float(np.partition(values, len(values) - k)[len(values) - k])


class _Invalid(Exception):
    """An inconsistency found while loading; becomes an IndexCorruptError."""


def _vector(arrays: dict[str, np.ndarray], name: str, kind: str) -> np.ndarray:
    array = arrays[name]
    # An empty array saved from an empty Python list may have come back as floats.
    if array.ndim != 1 or (array.dtype.kind != kind and array.size):
        raise _Invalid(f"{name!r} has shape {array.shape} and type {array.dtype}")
    return array


def _make_segment(terms: np.ndarray, slots: np.ndarray, tfs: np.ndarray) -> _Segment:
    # A stable sort keeps each term's postings in slot order. The input is a few
    # sorted runs (one per merged segment), which NumPy's stable sort exploits.
    order = np.argsort(terms, kind="stable")
    terms, slots, tfs = terms[order], slots[order], tfs[order]
    starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]]) if len(terms) else order
    indptr = np.r_[starts, len(terms)].astype(np.int64)
    return _Segment(terms[starts], indptr, slots, tfs)


def _fsync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
