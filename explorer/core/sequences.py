"""Sequence text (explorer/CONTRACT.md §2) → arrays (and labels after `|`), and the batching modes' layouts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import SequenceError, StackError
from .spec import Batching, InputSpec

_VALUE = re.compile(r"[^\s,;]+")
_INTEGER = re.compile(r"^[+-]?\d+$")
# A line of plain decimal token ids separated by spaces, tabs or commas: the fast path's whole syntax
_PLAIN_IDS = re.compile(r"[ \t,]*[+-]?[0-9]+(?:[ \t,]+[+-]?[0-9]+)*[ \t,]*")
# Lines as editors number them: str.splitlines() also breaks at \f, \v, \x1c-\x1e, \x85, \u2028 and \u2029
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
MAX_SEQUENCES = 100_000
FLOAT32_MAX = float(np.finfo(np.float32).max)


LABEL_SEPARATOR = "|"


@dataclass
class Labels:
    """The numbers after `|` on one line, with the 1-based column of each (for errors about them)."""

    values: np.ndarray   # float64
    columns: list[int]


@dataclass
class Sequences:
    """Parsed sequences: token ids (T,) int32, words (T,) str or features (T, F) float32, with editor lines
    and each line's labels (None where the line has no `|`)."""

    items: list[np.ndarray]
    lines: list[int]
    labels: list[Labels | None] = field(default=None)

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = [None] * len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(item) for item in self.items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0]


def parse(text: str, input_spec: InputSpec) -> Sequences:
    """Parses the sequence text; the first bad value raises SequenceError with line and column."""
    parsed, errors = parse_all(text, input_spec)
    if errors:
        raise errors[0]
    return parsed


def parse_all(text: str, input_spec: InputSpec) -> tuple[Sequences | None, list[SequenceError]]:
    """Parses the sequence text and collects every bad value (line and column), in text order; the
    sequences are None when there is any error."""
    steps = parse_steps(text, input_spec)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def parse_steps(text: str, input_spec: InputSpec, chunk_chars: int = 0):
    """parse_all in steps: a generator that yields after each `chunk_chars` characters of lines (0: never) and
    returns parse_all's (sequences, errors), so that a host can spread a large text over turns of its loop."""
    if not isinstance(text, str):
        return None, [SequenceError(1, 1, "the sequence text must be a string")]
    items, lines, labels, errors = [], [], [], []
    read = 0
    for number, raw in enumerate(_LINE_BREAK.split(text), start=1):
        read += len(raw) + 1
        if chunk_chars and read >= chunk_chars:
            read = 0
            yield
        content = _strip_comment(raw)
        if not content.strip():
            continue
        content, label_text = _split_labels(content)
        if not content.strip():
            errors.append(SequenceError(number, 1, f'there is no sequence before "{LABEL_SEPARATOR}": type the '
                                                   f"sequence first, then {LABEL_SEPARATOR} and its labels"))
            continue
        if input_spec.kind == "tokens":
            item = _parse_tokens(content, number, input_spec.vocab_size or 0, errors)
        elif input_spec.kind == "words":
            item = np.array(words_of(content.strip(), input_spec), dtype=object)   # spaces around a line: layout
            if not len(item):
                errors.append(SequenceError(number, 1, f"no word is left once the text is standardised "
                                                       f"({input_spec.standardize}){_made(input_spec)}"))
        else:
            item = _parse_features(content, number, input_spec.features or 0, errors)
            if input_spec.step_shape is not None and not errors:   # each step as the model's Input shapes it
                item = item.reshape(len(item), *input_spec.step_shape)
            if not input_spec.has_steps and len(item) > 1:
                errors.append(SequenceError(number, content.index(";") + 1,
                                            f"a vector input takes one vector per line ({input_spec.features} "
                                            "numbers), not timesteps separated by ;"))
        items.append(item)
        lines.append(number)
        labels.append(None if label_text is None else _parse_labels(label_text, len(content), number, errors))
        if len(items) > MAX_SEQUENCES:
            errors.append(SequenceError(number, 1, f"more than {MAX_SEQUENCES} sequences; split the text into "
                                                   "smaller batches"))
            break
    if not items and not errors:
        errors.append(SequenceError(1, 1, "there are no sequences: type one per line, e.g. `1 2 3`"))
    return (None, errors) if errors else (Sequences(items, lines, labels), [])


# keras.layers.TextVectorization's standardisation: tf.strings.lower (ASCII letters only) and its punctuation
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')


def standardized(text: str, standardize: str | None) -> str:
    """`text` as TextVectorization standardises it before splitting ("Cat," → "cat")."""
    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = text.translate(_ASCII_LOWER)
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = _PUNCTUATION.sub("", text)
    return text


def words_of(text: str, input_spec: InputSpec) -> list[str]:
    """The tokens TextVectorization makes of `text`: standardised, split (at whitespace, or into characters),
    then the ngrams of each width in turn, joined by a space (tf.strings.ngrams, short texts making none)."""
    if input_spec.split is None:   # split already: each token standardised alone, one made empty kept (id 0)
        tokens = [standardized(token, input_spec.standardize) for token in text.split()]
    else:
        text = standardized(text, input_spec.standardize)
        tokens = list(text) if input_spec.split == "character" else text.split()
    if input_spec.ngrams is None:
        return tokens
    return [" ".join(tokens[i:i + n]) for n in input_spec.ngrams for i in range(len(tokens) - n + 1)]


def _made(input_spec: InputSpec) -> str:
    """How a words input makes its tokens beyond standardising, for a message: "", or ", split into characters,
    ngrams 2, 3"."""
    return ((", split into characters" if input_spec.split == "character" else "")
            + (f", ngrams {', '.join(map(str, input_spec.ngrams))}" if input_spec.ngrams else ""))


def _split_labels(content: str) -> tuple[str, str | None]:
    """`3 14 15 | 0 1 1` → ("3 14 15 ", " 0 1 1"); a line without `|` has no label text."""
    at = content.find(LABEL_SEPARATOR)
    if at < 0:
        return content, None
    return content[:at], content[at + 1:]


def _parse_labels(text: str, offset: int, line: int, errors: list[SequenceError]) -> Labels | None:
    """The numbers after `|` (which sits at column offset + 1); problems go to `errors`."""
    second = text.find(LABEL_SEPARATOR)
    if second >= 0:
        errors.append(SequenceError(line, offset + second + 2, f'a second "{LABEL_SEPARATOR}": a line holds one '
                                                               f"sequence, then {LABEL_SEPARATOR} and its labels"))
        return None
    values, columns = [], []
    found = len(errors)
    for match in _VALUE.finditer(text):
        word, column = match.group(), offset + match.start() + 2
        try:
            value = float(word)
        except ValueError:
            errors.append(SequenceError(line, column, f'label "{word}" is not a number: expected a class id, '
                                                      "numbers for a regression head, or one label per step"))
            continue
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            errors.append(SequenceError(line, column, f'label "{word}" is not a finite float32 number'))
            continue
        values.append(value)
        columns.append(column)
    if not values and len(errors) == found:
        errors.append(SequenceError(line, offset + 1, f'nothing after "{LABEL_SEPARATOR}": expected a class id, '
                                                      "numbers for a regression head, or one label per step"))
    return Labels(np.array(values, dtype=np.float64), columns)


def _plain_ids(content: str, vocab_size: int) -> np.ndarray | None:
    """The fast path: a line of plain ids inside the vocabulary, parsed by NumPy (256 lines × 1000 ids in
    ~15 ms instead of ~300 ms). None for anything else, errors included: the exact path explains them."""
    if not content.isascii() or _PLAIN_IDS.fullmatch(content) is None:
        return None
    codes = np.frombuffer(content.encode("ascii"), dtype=np.uint8)
    digit = (codes >= 48) & (codes <= 57)
    count = int(digit[0]) + int(np.count_nonzero(digit[1:] & ~digit[:-1]))  # ids = runs of digits
    # text mode (sep given) of np.fromstring: every token is [+-]digits here, so it reads them all; a value
    # beyond int64 saturates, which the range check sends to the exact path
    ids = np.fromstring(content.replace(",", " "), dtype=np.int64, sep=" ")
    if len(ids) != count or ids.min() < 0 or ids.max() >= vocab_size:
        return None
    return ids.astype(np.int32)


def _parse_tokens(content: str, line: int, vocab_size: int, errors: list[SequenceError]) -> np.ndarray:
    fast = _plain_ids(content, vocab_size)
    if fast is not None:
        return fast
    ids = []
    found = len(errors)
    for match in _VALUE.finditer(content):
        word, column = match.group(), match.start() + 1
        if not _INTEGER.match(word):
            errors.append(SequenceError(line, column, f'"{word}" is not a token id: expected a whole number '
                                                      f"from 0 to {vocab_size - 1}"))
            continue
        try:
            value = int(word)
        except ValueError:  # more digits than Python converts: far outside any vocabulary
            errors.append(SequenceError(line, column, f"token id {word[:20]}… is outside the vocabulary "
                                                      f"(vocab_size {vocab_size}: ids 0 to {vocab_size - 1})"))
            continue
        if value < 0:
            errors.append(SequenceError(line, column, f"token id {value} is negative: ids run from 0 to "
                                                      f"{vocab_size - 1}"))
        elif value >= vocab_size:
            errors.append(SequenceError(line, column, f"token id {value} is outside the vocabulary "
                                                      f"(vocab_size {vocab_size}: ids 0 to {vocab_size - 1})"))
        else:
            ids.append(value)
    if ";" in content:
        errors.append(SequenceError(line, content.index(";") + 1, '";" separates timesteps of feature vectors; '
                                                                  "token ids are separated by spaces or commas"))
    elif not ids and len(errors) == found:
        errors.append(SequenceError(line, 1, "this line holds separators but no token ids"))
    return np.array(ids, dtype=np.int32)


def _parse_features(content: str, line: int, features: int, errors: list[SequenceError]) -> np.ndarray:
    steps = []
    start = 0
    parts = content.split(";")
    for index, part in enumerate(parts):
        column0 = start
        start += len(part) + 1
        values = []
        bad = False
        for match in _VALUE.finditer(part):
            word, column = match.group(), column0 + match.start() + 1
            try:
                value = float(word)
            except ValueError:
                errors.append(SequenceError(line, column, f'"{word}" is not a number: expected {features} '
                                                          "numbers per timestep"))
                bad = True
                continue
            if not math.isfinite(value):
                errors.append(SequenceError(line, column, f'"{word}" is not a finite number'))
                bad = True
            elif abs(value) > FLOAT32_MAX:  # the batch is float32: it would become inf
                errors.append(SequenceError(line, column, f'"{word}" is too large: values are float32, at most '
                                                          "±3.4e38"))
                bad = True
            values.append(value)
        if bad:
            continue
        if not values:
            if index == len(parts) - 1 and steps:
                continue  # a trailing ";"
            errors.append(SequenceError(line, column0 + 1, f"timestep {len(steps) + 1} is empty: expected "
                                                           f"{features} numbers between the ;"))
            continue
        if len(values) != features:
            errors.append(SequenceError(line, column0 + 1 + (len(part) - len(part.lstrip())),
                                        f"timestep {len(steps) + 1} has {len(values)} values; input.features "
                                        f"is {features}"))
            continue
        steps.append(values)
    return np.array(steps, dtype=np.float32).reshape(len(steps), features)


# --- batching ---

@dataclass
class Piece:
    """One batch as the model runs it, and where its cells sit in the full padded layout."""

    rows: np.ndarray    # row indices into the full batch
    batch: np.ndarray   # (b, t) or (b, t, F)
    offset: int         # full-layout timestep of this piece's first step


@dataclass
class Layout:
    """The full padded batch (as `pad` mode runs it) and the pieces the chosen mode runs."""

    batch: np.ndarray
    mask: np.ndarray     # (B, T) bool, True = valid step
    lengths: np.ndarray  # after truncation
    pieces: list[Piece]

    @property
    def padded_fraction(self) -> float:
        return 0.0 if self.mask.size == 0 else float(1.0 - self.mask.mean())

    @property
    def computed_fraction(self) -> float:
        """Share of the pieces' cells that are padding: what the mode wastes."""
        cells = sum(piece.batch.shape[0] * piece.batch.shape[1] for piece in self.pieces)
        return 0.0 if cells == 0 else 1.0 - float(self.lengths.sum()) / cells


def truncate(item: np.ndarray, maxlen: int | None, truncating: str) -> np.ndarray:
    if maxlen is None or len(item) <= maxlen:
        return item
    return item[-maxlen:] if truncating == "pre" else item[:maxlen]


def pad(items: list[np.ndarray], batching: Batching, length: int, dtype: str) -> np.ndarray:
    from . import backend
    backend.load()
    from keras.utils import pad_sequences
    return pad_sequences(items, maxlen=length, dtype=dtype, padding=batching.padding,
                         truncating=batching.truncating, value=batching.pad_value)


def pad_preview(sequences: Sequences, batching: Batching) -> tuple[np.ndarray, np.ndarray]:
    """The padded batch and its mask as `pad` mode lays them out (exactly maxlen steps when it is set, as
    keras.utils.pad_sequences), in NumPy alone (no Keras import): what the window shows while the text is
    typed. Words stay words ("" pads them)."""
    items = [truncate(item, batching.maxlen, batching.truncating) for item in sequences.items]
    lengths = np.array([len(item) for item in items], dtype=np.int64)
    length = batching.maxlen or int(lengths.max(initial=0))
    first = items[0] if items else np.zeros(0, dtype=np.int32)
    if first.dtype == object:
        batch = np.full((len(items), length), "", dtype=object)
    elif first.ndim >= 2:
        batch = np.full((len(items), length, *first.shape[1:]), batching.pad_value, dtype=np.float32)
    else:
        batch = np.full((len(items), length), batching.pad_value, dtype=np.int32)
    mask = np.zeros((len(items), length), dtype=bool)
    for row, item in enumerate(items):
        start = 0 if batching.padding == "post" else length - len(item)
        batch[row, start:start + len(item)] = item
        mask[row, start:start + len(item)] = True
    return batch, mask


def plan_buckets(lengths: np.ndarray, width: int, cost: tuple[float, float] | None = None) -> list[np.ndarray]:
    """The rows of each bucket. Lengths fall into bins of `width` steps (1–width, width+1–2·width, …); without
    a cost (the engine gives none when a merge would change a number: run.bins_merge_exactly), each bin is a
    bucket. With `cost` = (per step, per cell), neighbouring bins merge wherever that is
    cheaper: a bucket of n rows padded to L steps costs L × (per step + n × per cell), and the recurrent loop's
    fixed cost per step is paid again by every bucket, so many narrow buckets can be slower than one padded
    batch. The plan minimises the total (dynamic programming over the bins, exact)."""
    bins: dict[int, list[int]] = {}
    for row, size in enumerate(lengths):
        bins.setdefault((int(size) - 1) // width, []).append(row)
    keys = sorted(bins)
    groups = [np.array(bins[key]) for key in keys]
    if cost is None or len(groups) < 2:
        return groups
    per_step, per_cell = cost
    counts = np.cumsum([0] + [len(g) for g in groups])
    longest = np.array([int(lengths[g].max()) for g in groups], dtype=float)
    best = np.zeros(len(groups) + 1)
    start = np.zeros(len(groups), dtype=int)
    for j in range(len(groups)):                 # best[j + 1]: bins 0…j; the last bucket is bins i…j
        rows = counts[j + 1] - counts[: j + 1]
        total = best[: j + 1] + longest[j] * (per_step + per_cell * rows)
        start[j] = int(np.argmin(total))
        best[j + 1] = total[start[j]]
    buckets = []
    j = len(groups) - 1
    while j >= 0:
        i = start[j]
        buckets.append(np.concatenate(groups[i:j + 1]))
        j = i - 1
    return buckets[::-1]


def describe_buckets(buckets: list[list[int]]) -> str:
    """The buckets as they ran, by editor line: "3 buckets ran: lines 1, 4 | 2 | 3"."""
    count = f"{len(buckets)} bucket{'s' if len(buckets) != 1 else ''}"
    return f"{count} ran: lines " + " | ".join(", ".join(map(str, lines)) for lines in buckets)


def layout(sequences: Sequences, batching: Batching, *, fixed_length: bool = False,
           bucket_cost: tuple[float, float] | None = None) -> Layout:
    """Pads the batch as keras.utils.pad_sequences(maxlen=…) does (exactly maxlen steps when it is set, else
    the longest sequence's) and splits it into the pieces the chosen mode runs: pad and chunked run that batch;
    bucket and one_by_one run the sequences, truncated to maxlen, padded to each piece's own longest (bucket
    mode: see plan_buckets, with the engine's `bucket_cost`)."""
    items = [truncate(item, batching.maxlen, batching.truncating) for item in sequences.items]
    lengths = np.array([len(item) for item in items], dtype=np.int64)
    length = batching.maxlen or int(lengths.max())
    dtype = "int32" if items[0].ndim == 1 else "float32"
    full = pad(items, batching, length, dtype)
    steps = np.arange(length)[None, :]
    if batching.padding == "post":
        mask = steps < lengths[:, None]
    else:
        mask = steps >= (length - lengths)[:, None]
    mode = batching.mode
    if fixed_length and mode in ("bucket", "one_by_one"):
        raise StackError(f'batching mode "{mode}" gives each piece its own length, but flatten needs every '
                         f"batch padded to maxlen ({batching.maxlen}); use pad mode or pooling instead of flatten")
    if mode in ("pad", "chunked"):
        pieces = [Piece(np.arange(len(items)), full, 0)]
    elif mode == "one_by_one":
        pieces = [Piece(np.array([row]), item[None], _offset(batching, length, len(item)))
                  for row, item in enumerate(items)]
    else:
        pieces = []
        for rows in plan_buckets(lengths, batching.bucket_width, bucket_cost):
            rows = np.sort(rows)
            longest = int(lengths[rows].max())
            batch = pad([items[r] for r in rows], batching, longest, dtype)
            pieces.append(Piece(rows, batch, _offset(batching, length, longest)))
    return Layout(full, mask, lengths, pieces)


def input_layout(sequences: Sequences, input_spec: InputSpec, batching: Batching, *, fixed_length: bool = False,
                 bucket_cost: tuple[float, float] | None = None) -> Layout:
    """The layout of one input's sequences: `layout`'s, or a vector input's (vector_layout)."""
    if not input_spec.has_steps:
        return vector_layout(sequences)
    return layout(sequences, batching, fixed_length=fixed_length, bucket_cost=bucket_cost)


def vector_layout(sequences: Sequences) -> Layout:
    """The batch of a "vector" input: one vector per example, (B, F), no time axis and nothing padded."""
    batch = np.stack([item[0] for item in sequences.items]).astype(np.float32)
    rows = len(batch)
    return Layout(batch, np.ones((rows, 1), dtype=bool), np.ones(rows, dtype=np.int64),
                  [Piece(np.arange(rows), batch, 0)])


def _offset(batching: Batching, full_length: int, piece_length: int) -> int:
    return 0 if batching.padding == "post" else full_length - piece_length
