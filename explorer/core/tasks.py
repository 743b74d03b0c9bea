"""Built-in training tasks: a readable rule that labels random sequences, written as sequence text.

`generate(name, count, input_spec, seed=…)` returns text such as `3 14 7 2 | 1`, one sequence per line,
after a comment line with the rule; the same seed gives the same text. `generate_inputs` does it for a model of
several inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import ExplorerError
from .spec import InputSpec

MIN_LENGTH, MAX_LENGTH = 3, 12     # sequence lengths vary, so padding and masks matter
MAX_TOKEN = 20                      # ids drawn from 1 … min(MAX_TOKEN, vocab_size - 1)
MAX_COUNT = 10_000
POSITIVE = ("good", "great", "fun", "lovely", "superb", "enjoyed", "liked", "brilliant")
NEGATIVE = ("bad", "awful", "boring", "dull", "poor", "hated", "disliked", "terrible")
NEUTRAL = ("the", "film", "was", "a", "plot", "and", "it", "very", "movie", "story", "acting", "quite")


class TaskError(ExplorerError):
    """An unknown task, or one that does not fit the stack's input."""


@dataclass(frozen=True)
class Task:
    name: str
    input_kind: str      # "tokens", "features" or "words"
    rule: str            # the rule, in words
    classes: int
    per_step: bool       # one label per step
    make: Callable       # (rng, input_spec, k) → (sequence, label or labels per step)


def _lengths(rng) -> int:
    return int(rng.integers(MIN_LENGTH, MAX_LENGTH + 1))


def _top(spec: InputSpec) -> int:
    return min(MAX_TOKEN, (spec.vocab_size or 2) - 1)


def _tokens(rng, spec: InputSpec, length: int | None = None) -> np.ndarray:
    return rng.integers(1, _top(spec) + 1, size=length or _lengths(rng))


def _without_7(rng, spec: InputSpec, length: int | None = None) -> np.ndarray:
    ids = _tokens(rng, spec, length)
    ids[ids == 7] = 8 if _top(spec) >= 8 else 6
    return ids


def _contains_7(rng, spec, k):
    ids = _without_7(rng, spec)
    if rng.random() < 0.5:
        ids[rng.integers(len(ids))] = 7
    return ids, int((ids == 7).any())


def _seen_7(rng, spec, k):
    ids, _ = _contains_7(rng, spec, k)
    return ids, np.maximum.accumulate(ids == 7).astype(int)


def _first_token(rng, spec, k):
    ids = _tokens(rng, spec)
    return ids, int(ids[0] % k)


def _count_mod_3(rng, spec, k):
    ids = _tokens(rng, spec)
    return ids, len(ids) % 3


def _is_sorted(rng, spec, k):
    ids = _tokens(rng, spec)
    if rng.random() < 0.5:
        ids = np.sort(ids)
    return ids, int(bool(np.all(np.diff(ids) >= 0)))


def _sum_sign(rng, spec, k):
    steps = rng.normal(size=(_lengths(rng), spec.features or 1)).round(2)
    return steps, int(steps[:, 0].sum() > 0)


def _sentiment(rng, spec, k):
    positive = rng.random() < 0.5
    words = list(rng.choice(NEUTRAL, size=_lengths(rng) - 1))
    words.insert(int(rng.integers(len(words) + 1)), rng.choice(POSITIVE if positive else NEGATIVE))
    return np.array(words), int(positive)


TASKS = {task.name: task for task in (
    Task("contains_7", "tokens", "class 1 when token 7 appears anywhere in the sequence, else 0", 2, False,
         _contains_7),
    Task("seen_7", "tokens", "at each step, 1 once token 7 has appeared (that step included), else 0", 2, True,
         _seen_7),
    Task("first_token", "tokens", "the class is the first token mod {k} (it must be remembered to the end)", 2, False, _first_token),
    Task("count_mod_3", "tokens", "the class is the number of tokens mod 3 (padding must not count)", 3, False,
         _count_mod_3),
    Task("is_sorted", "tokens", "class 1 when the ids never decrease, else 0", 2, False, _is_sorted),
    Task("sum_sign", "features", "class 1 when the first feature sums to more than 0 over the steps, else 0", 2,
         False, _sum_sign),
    Task("sentiment", "words", f"class 1 for a sentence with a positive word ({', '.join(POSITIVE[:3])} …), "
                               f"0 for a negative one ({', '.join(NEGATIVE[:3])} …)", 2, False, _sentiment),
)}


def names() -> list[str]:
    return list(TASKS)


def get(name: str) -> Task:
    if name not in TASKS:
        raise TaskError(f'unknown task "{name}"; tasks: {", ".join(TASKS)}')
    return TASKS[name]


def generate(name: str, count: int, input_spec: InputSpec, *, seed: int = 0, classes: int | None = None) -> str:
    """`count` labelled sequences of task `name` as sequence text (a comment line with the rule first).
    `classes`: first_token's k (the head's number of classes; 2 when not given)."""
    task = get(name)
    k = max(2, min(classes or task.classes, MAX_TOKEN))
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise TaskError(f"the number of sequences must be from 1 to {MAX_COUNT}, got {count}")
    if input_spec.kind != task.input_kind:
        raise TaskError(f'task {name} needs {task.input_kind} input, but the stack takes {input_spec.kind}')
    if task.input_kind == "tokens" and (input_spec.vocab_size or 0) < 9:
        raise TaskError(f"task {name} draws token ids 1 to 8 at least: vocab_size must be at least 9, "
                        f"got {input_spec.vocab_size}")
    rng = np.random.default_rng(seed)
    rows = [f"# task {name}: {task.rule.format(k=k)}"]
    for _ in range(count):
        sequence, label = task.make(rng, input_spec, k)
        rows.append(f"{_sequence_text(sequence)} | {' '.join(map(str, np.atleast_1d(label)))}")
    return "\n".join(rows) + "\n"


def generate_inputs(name: str, count: int, inputs: list[InputSpec], *, seed: int = 0,
                    classes: int | None = None) -> dict[str, str]:
    """A model of several inputs: the task's labelled sequences on the first input of the kind it needs, and as many
    random, unlabelled sequences of each other input's kind, which the rule does not read (the model must learn to
    leave them aside). Input name → sequence text."""
    task = get(name)
    labelled = next((item for item in inputs if item.kind == task.input_kind), None)
    if labelled is None:
        raise TaskError(f"task {name} needs a {task.input_kind} input, but the stack's inputs are "
                        + ", ".join(f"{item.name} ({item.kind})" for item in inputs))
    texts = {labelled.name: generate(name, count, labelled, seed=seed, classes=classes)}
    rng = np.random.default_rng(seed + 1)
    for item in inputs:
        if item is not labelled:
            rows = [f"# random {item.kind}: task {name} does not read this input"]
            rows += [_sequence_text(_random_sequence(rng, item)) for _ in range(count)]
            texts[item.name] = "\n".join(rows) + "\n"
    return texts


def _random_sequence(rng, spec: InputSpec) -> np.ndarray:
    """One sequence of the input's kind, of a random length (a vector: its values)."""
    if spec.kind == "tokens":
        return _tokens(rng, spec)
    if spec.kind == "words":
        return np.array(rng.choice(NEUTRAL, size=_lengths(rng)))
    if spec.kind == "vector":
        return rng.normal(size=spec.features).round(2)
    return rng.normal(size=(_lengths(rng), spec.features)).round(2)


def named_in(text: str) -> str | None:
    """The task whose comment line (`# task NAME: …`, as `generate` writes it) heads the text, if any."""
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):       # a sequence: not split (a large text has many)
            continue
        words = line.strip().split()
        if len(words) >= 3 and words[:2] == ["#", "task"] and words[2].rstrip(":") in TASKS:
            return words[2].rstrip(":")
    return None


def _sequence_text(sequence: np.ndarray) -> str:
    if sequence.ndim == 2:
        return "; ".join(" ".join(f"{value:g}" for value in step) for step in sequence)
    return " ".join(str(value) for value in sequence)
