"""`train` on the command line (explorer/CONTRACT.md §4): the JSON report, the same curve from the same seed,
user errors as one `error:` line with exit 2; `run` reads labelled text and ignores the labels; `tasks` lists
the tasks."""

from __future__ import annotations

import json

import pytest

from explorer.core import tasks
from .test_cli import assert_user_error, run_cli


def test_train_reports_a_curve_per_step_and_the_final_run(capsys):
    code, out, err = run_cli(capsys, "train", "preset:train_forgotten_mask", "--steps", "6", "--optimizer", "sgd",
                             "--lr", "0.1", "--json", "-")
    assert code == 0, err
    report = json.loads(out)
    assert report["steps"] == 6 and len(report["loss"]) == 6 and len(report["accuracy"]) == 6
    assert report["loss_function"] == "sparse_categorical_crossentropy" and report["optimizer"] == "sgd"
    assert report["seconds"] > 0 and report["run"]["output_shape"] == [64, 3]
    assert [layer["name"] for layer in report["run"]["layers"]] == ["embedding_1", "lstm_1", "dense_1"]
    again = json.loads(run_cli(capsys, "train", "preset:train_forgotten_mask", "--steps", "6", "--optimizer", "sgd",
                               "--lr", "0.1", "--json", "-")[1])
    assert again["loss"] == report["loss"]


def test_a_task_and_a_summary_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "preset:average_pooling", "--task", "first_token", "--count", "20",
                             "--steps", "2")
    assert code == 0, err
    assert out.startswith("sparse categorical cross-entropy: dense_1 ends in softmax over 5 classes\n")
    assert "2 steps in" in out and "accuracy" in out


def test_run_ignores_labels(capsys, tmp_path):
    labelled, plain = tmp_path / "labelled.txt", tmp_path / "plain.txt"
    labelled.write_text("5 12 7 | 1\n8 4 | 0.5 2\n")
    plain.write_text("5 12 7\n8 4\n")
    reports = []
    for path in (labelled, plain):
        code, out, err = run_cli(capsys, "run", "preset:average_pooling", "--input", str(path), "--json", "-")
        assert code == 0, err
        reports.append(json.loads(out))
    assert reports[0]["layers"] == reports[1]["layers"] and reports[0]["batch"] == reports[1]["batch"]


def test_tasks_are_listed(capsys):
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == tasks.names()


@pytest.mark.parametrize("args, fragments", [
    (["--steps", "0"], ["the number of steps must be a whole number from 1"]),
    (["--steps", "3", "--lr", "-1"], ["the learning rate must be a number above 0"]),
    (["--steps", "3", "--lr", "nan"], ["the learning rate"]),
    (["--steps", "3", "--task", "nope"], ['unknown task "nope"']),
    (["--steps", "3", "--task", "sum_sign"], ["task sum_sign needs features input"]),
    (["--steps", "3", "--task", "contains_7", "--count", "0"], ["from 1 to"]),
    (["--steps", "3", "--save-keras", "out.txt"], ["ending in .keras"]),
    (["--steps", "3", "--optimizer", "lbfgs"], ["invalid choice"]),
    (["--steps", "x"], ["invalid int value"]),
    ([], ["--steps"]),
])
def test_bad_train_arguments(capsys, args, fragments):
    assert_user_error(*run_cli(capsys, "train", "preset:train_forgotten_mask", *args), *fragments)


def test_unlabelled_or_unfitting_text_names_the_line(capsys, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("5 12 7 | 1\n8 4\n")
    assert_user_error(*run_cli(capsys, "train", "preset:average_pooling", "--input", str(text), "--steps", "1"),
                      "line 2, column 1: this line has no labels")
    text.write_text("5 12 7 | 1\n8 4 | 9\n")
    assert_user_error(*run_cli(capsys, "train", "preset:average_pooling", "--input", str(text), "--steps", "1"),
                      "line 2, column 7: label 9 is not a class id of dense_1")


TWO_INPUTS = {
    "input": {"kind": "tokens", "vocab_size": 12, "name": "ids"},
    "more_inputs": [{"kind": "features", "features": 2, "name": "side"}, {"kind": "vector", "features": 3,
                                                                         "name": "meta"}],
    "layers": [{"type": "embedding", "output_dim": 3, "mask_zero": True, "name": "emb", "inputs": ["ids"]},
               {"type": "lstm", "units": 4, "name": "read"},
               {"type": "gru", "units": 2, "name": "other", "inputs": ["side"]},
               {"type": "keras", "class_name": "Concatenate", "config": {}, "name": "both",
                "inputs": ["read", "other", "meta"]},
               {"type": "dense", "units": 2, "activation": "softmax", "name": "head"}]}


@pytest.mark.parametrize("seed", [0, 5])
def test_a_task_labels_one_input_of_a_model_of_several_and_fills_the_others(seed):
    from explorer.core import sequences
    from explorer.core.spec import from_dict
    spec = from_dict({**TWO_INPUTS, "seed": seed})
    texts = tasks.generate_inputs("contains_7", 15, spec.all_inputs(), seed=seed)
    assert texts["ids"] == tasks.generate("contains_7", 15, spec.input, seed=seed)   # the task, on its input
    for item in spec.all_inputs():
        parsed = sequences.parse(texts[item.name], item)   # each text is its input's kind, one line per example
        assert len(parsed.items) == 15
        assert all(labels is not None for labels in parsed.labels) == (item.name == "ids")
        assert all(labels is None for labels in parsed.labels) == (item.name != "ids")
    assert tasks.generate_inputs("contains_7", 15, spec.all_inputs(), seed=seed) == texts   # the seed decides
    with pytest.raises(tasks.TaskError, match=r"task sentiment needs a words input, but the stack's inputs are "
                                              r"ids \(tokens\), side \(features\), meta \(vector\)"):
        tasks.generate_inputs("sentiment", 5, spec.all_inputs())


def test_train_with_a_task_trains_a_model_of_several_inputs(capsys, tmp_path):
    from explorer.core.spec import load
    stack, saved = tmp_path / "two.stack.json", tmp_path / "trained.stack.json"
    stack.write_text(json.dumps(TWO_INPUTS))
    code, out, err = run_cli(capsys, "train", str(stack), "--task", "contains_7", "--count", "12", "--steps", "3",
                             "--json", "-", "--save", str(saved))
    assert code == 0, err
    report = json.loads(out)
    assert report["steps"] == 3 and all(loss == loss for loss in report["loss"])
    trained = load(saved)
    texts = tasks.generate_inputs("contains_7", 12, trained.all_inputs(), seed=trained.seed)
    assert trained.sequences == texts["ids"] and trained.more_sequences == {"side": texts["side"], "meta": texts["meta"]}
    assert trained.weights is not None
