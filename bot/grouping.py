"""Surges: group the complaints and questions under one viral post by meaning (issue 16).

When thousands of comments land on one post, officers answer a whole group at once. Texts
become vectors: the classifier's sentence embeddings when its transformer is in use, else
hashed word and character n-grams. New groups come from average-linkage clustering, refined
by reassigning every text to its nearest group centroid; later texts join the group whose
stored centroid is nearest (`nearest_groups`).

Pure: texts in, vectors and row indices out (stdlib, numpy and scikit-learn only).
Deterministic: the same texts give the same vectors and the same groups, and n-gram vectors
need no fitted state, so a centroid stored today can be compared with a text vectorised later.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import HashingVectorizer


@dataclass(frozen=True)
class GroupingSettings:
    join_at: float  # cosine similarity to a group's centroid at/above which a text joins that group
    link_at: float  # average similarity at/above which texts are linked into a new group (average linkage)
    min_size: int = 3  # smallest group worth showing


# ---------------------------------------------------------------------------------------------
# Text normalisation

_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:ly|link|xyz|me|gg)/\S*", re.IGNORECASE)
_MENTION = re.compile(r"@[\w.]+")
_LETTERS = re.compile(r"[^\W\d_]+")  # letter runs: drops emoji, digits, punctuation ("50rb" -> "rb")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")  # three or more of a letter: "bangetttt" -> "banget"

# Chat spellings of words that are kept (spellings of stop words need no entry: they are dropped).
SPELLINGS = {"blm": "belum", "blom": "belum", "belom": "belum", "dpt": "dapat", "dapet": "dapat",
             "kpn": "kapan", "trs": "terus", "bntuan": "bantuan", "uda": "sudah", "ngga": "tidak"}

# Function words, polite fillers, forms of address and chat particles: they are in every kind
# of comment ("mohon min tolong dibantu ya kak") and would pull unrelated texts together. The
# words that carry a complaint stay, including "belum" (not yet paid) and the programme names.
STOP_WORDS = frozenset("""
ada adalah admin agar aja aku akan amin anda apa apakah atas atau atuh bagaimana bagi bah bahwa bang bapak
biar bilang bisa bu buat bukan cuma dah dalam dan dari deh dengan dgn di dia dibalas dibantu dong dr dulu
engga enggak ga gak gan gimana gitu gk gmn gw gue halo hallo ibu ini itu iya izin jadi jawabannya jg juga
kah kak kakak kalau kalian kalo kami kan karena kasih katanya kayak ke kenapa kita klo knp kok krn lagi lah
lo lu maaf makasih mana mas masih mau mbak mi min mimin mohon nah namun nggak ni nih nya oleh pada padahal
pak para pd permisi punten pun respon sama saja sampai sampe sangat saya sdh sedang sekarang selamat semua
seperti sih silakan sini sm soalnya sudah sy sya tabe tanya tapi telah terima tersebut terus tiap tidak
tdk tlg tolong tp tq trims tuh udah udh untuk utk wb wr ya yaa yah yang yg yth assalamualaikum
ditindaklanjuti bertanya menteri mensos kemensos kemensosri the and
""".split())

# A light stemmer, so that affixed forms share a word: "pencairan", "dicairkan", "cairnya" ->
# "cair"; "dipotong", "potongan" -> "potong"; "terdaftar" -> "daftar". Only the commonest
# affixes, and only where at least four letters remain ("bulan" stays "bulan"). Character
# n-grams below catch what it misses.
_SUFFIX = re.compile(r"(?<=[^\W\d_]{4})(?:nya|kan|an)$")
_PREFIX = re.compile(r"^(?:di|ter|ber|peng|pen|pem|pe|meng|men|mem|me)(?=[^\W\d_]{4})")


def stem(word: str) -> str:
    if word.endswith("tanya"):  # "bertanya", "ditanya": the "nya" is part of the root
        return "tanya"
    return _PREFIX.sub("", _SUFFIX.sub("", word))


def clean_words(text: str) -> list[str]:
    """The content words of a comment, lower case, in order (not stemmed)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _MENTION.sub(" ", _URL.sub(" ", text))
    out = []
    for word in _LETTERS.findall(_REPEATS.sub(r"\1", text)):
        word = SPELLINGS.get(word, word)
        if len(word) > 1 and word not in STOP_WORDS:
            out.append(word)
    return out


# ---------------------------------------------------------------------------------------------
# Vectors

# Hashed features need no vocabulary, so vectors of texts seen on different days are comparable.
# Stemmed words and word pairs carry the topic; character 3-5-grams within words catch typos and
# the affixes the stemmer leaves. Each part is L2-normalised and the two are joined, so a pair's
# cosine is the mean of its word cosine and its character cosine. 2**11 + 2**12 dimensions: the
# similarity matrix of 2,000 texts takes ~0.5 s on 2 cores; smaller tables collide more.
WORD_DIM = 2**11
CHAR_DIM = 2**12
_WORDS = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=WORD_DIM, alternate_sign=False,
                           binary=True, norm="l2", token_pattern=r"\S+", lowercase=False, dtype=np.float32)
_CHARS = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=CHAR_DIM, alternate_sign=False,
                           binary=True, norm="l2", lowercase=False, dtype=np.float32)


def ngram_vectors(texts: Sequence[str]) -> np.ndarray:
    """(n, WORD_DIM + CHAR_DIM) float32, rows L2-normalised; a text without content words is all zeros."""
    stems = [" ".join(stem(w) for w in clean_words(t)) for t in texts]
    out = np.zeros((len(stems), WORD_DIM + CHAR_DIM), dtype=np.float32)
    if stems:
        for part, offset in ((_WORDS.transform(stems), 0), (_CHARS.transform(stems), WORD_DIM)):
            rows = np.repeat(np.arange(len(stems)), np.diff(part.indptr))
            out[rows, part.indices + offset] = part.data
    return _normalise(out)


def text_vectors(texts: Sequence[str], classifier: object | None = None) -> tuple[np.ndarray, str]:
    """(n, d) float32, rows L2-normalised, and their kind: "transformer" or "ngram".

    The transformer's sentence embeddings when `classifier` is a classifiers.pipeline.Pipeline
    whose backend uses its transformer; else hashed n-grams. Duck-typed: no torch import here.
    """
    scorer = getattr(classifier, "transformer", None)
    weights = getattr(getattr(classifier, "config", None), "weights", None) or {}
    if scorer is not None and weights.get("transformer") and callable(getattr(scorer, "embed", None)):
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), "transformer"
        return _normalise(np.asarray(scorer.embed(list(texts)), dtype=np.float32)), "transformer"
    return ngram_vectors(texts), "ngram"


# Thresholds per kind of vector, chosen with `python -m tests.bench.bench_grouping --tune`: a grid
# on tests.surge_texts.surge_comments(2000, seed=1) (the tests check seed 0), AMD EPYC, 2 cores.
# ARI counts the texts in no group as one more cluster; coverage is the share of complaints grouped.
#
# ngram, measured: link_at 0.06-0.09 all reach ARI >= 0.83 (0.05 joins two kinds: ARI 0.47;
#   0.10 splits one: ARI 0.57), so link_at is the middle of that window. join_at 0.10-0.25 give
#   ARI 0.83-0.85 and purity 0.98-1.00; 0.30 leaves 7% of complaints out. At (0.075, 0.20):
#   ARI 0.841, purity 0.989, coverage 0.999. Held out (seed 0): ARI 0.811 / 0.870 / 0.856 and
#   purity 0.958 / 0.987 / 0.977 for 500 / 2,000 / 5,000 texts. The window is narrow: texts much
#   shorter or longer than these would move it, so re-measure on real surges when there are some.
# transformer (the shipped fine-tuned encoder, backend "transformer"), measured: best ARI 0.575
#   (purity 0.863, coverage 0.620) at (link_at 0.30, join_at 0.60); at link_at 0.40, ARI 0.46 with
#   coverage 0.999. Held out (seed 0, 2,000 texts): ARI 0.580, purity 0.900, coverage 0.611. Its
#   embeddings were trained to tell labels apart (complaint, question, ...), not topics, and cost
#   ~40-50 ms a text on 2 busy cores: n-grams group these surges better and ~100x faster.
SETTINGS = {
    "ngram": GroupingSettings(join_at=0.20, link_at=0.075),
    "transformer": GroupingSettings(join_at=0.60, link_at=0.30),
}


def settings_for(kind: str) -> GroupingSettings:
    """The thresholds for vectors of this kind ("ngram" or "transformer")."""
    return SETTINGS[kind]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected an (n, d) array, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The normalised mean of the rows, float32, 1-D (all zeros if the mean is, or if there are no rows)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) == 0:
        return np.zeros(vectors.shape[1:], dtype=np.float32).ravel()
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def nearest_groups(vectors: np.ndarray, centroids: np.ndarray, join_at: float) -> list[int | None]:
    """For each row, the index of the most similar centroid if its similarity >= join_at, else None.

    An all-zero row (a text without content words) joins no group. Vectors and centroids must
    be of the same kind (settings_for's "ngram" or "transformer"): store the kind with a centroid.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    centroids = np.asarray(centroids, dtype=np.float32)
    if len(vectors) == 0:
        return []
    if centroids.size == 0:
        return [None] * len(vectors)
    vectors = vectors.reshape(len(vectors), -1)
    centroids = centroids.reshape(len(centroids), -1)
    if vectors.shape[1] != centroids.shape[1]:
        raise ValueError(f"vectors of dimension {vectors.shape[1]} against centroids of {centroids.shape[1]}: "
                         "a centroid stored from another kind of vector?")
    sims = vectors @ centroids.T
    best = sims.argmax(axis=1)  # ties: the lower index
    norms = np.linalg.norm(vectors, axis=1)  # a text without content words joins no group, whatever join_at
    return [int(b) if norms[i] > 0 and sims[i, b] >= join_at else None for i, b in enumerate(best.tolist())]


# Average linkage needs all pairs: above this many rows, groups are seeded on an evenly spaced
# sample and every row is then assigned by centroid (the similarity matrix stays ~36 MB).
MAX_LINKED = 3000
REFINE_ROUNDS = 10


def new_groups(vectors: np.ndarray, settings: GroupingSettings) -> list[list[int]]:
    """Row indices of texts that form groups of at least min_size, largest group first.

    Seeds: average-linkage clusters of at least min_size (texts of two different clusters are,
    on average, less similar than link_at). Then, a few rounds as in k-means: each text joins its nearest
    seed centroid if at least join_at similar, and centroids are recomputed; this pulls in
    texts that linkage left out and moves texts whose wording first tied them to another group.
    Rows left out belong to no group: texts unlike every group (most noise) and all-zero rows
    (emoji only, a tag of friends).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        return []
    live = np.flatnonzero(vectors.any(axis=1))
    if len(live) < max(settings.min_size, 2):
        return []
    rows = vectors[live]
    sample = np.arange(len(live))
    if len(live) > MAX_LINKED:
        sample = np.linspace(0, len(live) - 1, MAX_LINKED).astype(int)
    distance = rows[sample] @ rows[sample].T
    np.subtract(1.0, distance, out=distance)
    np.clip(distance, 0.0, 2.0, out=distance)
    np.fill_diagonal(distance, 0.0)
    distance = np.maximum(distance, distance.T)  # exactly symmetric despite float rounding
    # scikit-learn merges while the distance is below the threshold; the epsilon makes it "at or above link_at"
    labels = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                     distance_threshold=1.0 - settings.link_at + 1e-6).fit_predict(distance)
    del distance
    # Group of each live row (-1: none), seeds of at least min_size only.
    sizes = np.bincount(labels)
    keep = np.flatnonzero(sizes >= settings.min_size)
    member = np.full(len(live), -1)
    seeded = np.isin(labels, keep)
    member[sample[seeded]] = np.searchsorted(keep, labels[seeded])
    for _ in range(REFINE_ROUNDS):
        k = int(member.max()) + 1
        if k == 0:
            break
        onehot = np.zeros((k, len(live)), dtype=np.float32)
        grouped = member >= 0
        onehot[member[grouped], np.flatnonzero(grouped)] = 1.0
        centres = _normalise(onehot @ rows)  # normalised means, as centroid() computes them
        sims = rows @ centres.T
        best = sims.argmax(axis=1)
        moved = np.where(sims[np.arange(len(live)), best] >= settings.join_at, best, -1)
        # groups that fell below min_size let go of their rows; ids renumbered densely
        counts = np.bincount(moved[moved >= 0], minlength=k)
        kept = np.flatnonzero(counts >= settings.min_size)
        renumber = np.full(k + 1, -1)
        renumber[kept] = np.arange(len(kept))
        moved = renumber[moved]  # -1 indexes the last slot, which stays -1
        if np.array_equal(moved, member):
            break
        member = moved
    groups = [live[member == g].tolist() for g in range(int(member.max()) + 1)]
    groups = [g for g in groups if len(g) >= settings.min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


# ---------------------------------------------------------------------------------------------
# Labels and storage


def group_title(texts: Sequence[str], max_words: int = 4) -> str:
    """A short label: the words most of the group's texts share, in the order they are written.

    Words of three letters or more (not "rb" of "50rb") are counted once per text; a word makes
    the title if it is in at least a third as many texts as the commonest word, at most max_words
    of them, commonest first; ties go to the word seen first. Deterministic.
    """
    counts: Counter[str] = Counter()
    place: dict[str, float] = {}  # summed relative position in the texts that have the word
    first_seen: dict[str, int] = {}
    for text in texts:
        words = [w for w in clean_words(text) if len(w) >= 3]
        for word in dict.fromkeys(words):  # a repeated word counts once, at its first place
            counts[word] += 1
            place[word] = place.get(word, 0.0) + words.index(word) / len(words)
            first_seen.setdefault(word, len(first_seen))
    if not counts or max_words < 1:
        return ""
    top = max(counts.values())
    chosen = sorted((w for w in counts if counts[w] * 3 >= top), key=lambda w: (-counts[w], first_seen[w]))
    chosen = chosen[:max_words]
    chosen.sort(key=lambda w: (place[w] / counts[w], first_seen[w]))
    return " ".join(chosen)


def to_blob(vector: np.ndarray) -> bytes:
    """A 1-D vector as little-endian float32 bytes, for a BLOB column."""
    return np.asarray(vector, dtype="<f4").ravel().tobytes()


def from_blob(data: bytes) -> np.ndarray:
    """The vector `to_blob` stored, float32, 1-D."""
    return np.frombuffer(data, dtype="<f4").astype(np.float32)
