"""The Keras layer card: offered by the Add layer menu, a class chooser whose change starts the config afresh,
and a config edited as JSON (what is not a JSON object is shown, never applied)."""

from __future__ import annotations

from explorer.core.registry import KERAS_STARTERS
from explorer.core.spec import StackSpec, from_dict
from explorer.qt.stack_editor import StackEditor
from explorer.session import Session


def editor_for(qtbot, spec: StackSpec) -> StackEditor:
    editor = StackEditor(Session(spec, trusted=True))
    qtbot.addWidget(editor)
    return editor


def features_stack() -> StackSpec:
    return from_dict({"input": {"kind": "features", "features": 2}, "layers": [{"type": "lstm", "units": 3}]})


def test_the_add_menu_offers_a_keras_layer_that_starts_as_a_conv1d(qtbot):
    editor = editor_for(qtbot, features_stack())
    action = next(action for action in editor.add_menu.actions() if action.data() == "keras")
    assert action.text() == "Keras layer"
    editor.add_menu.setActiveAction(action)
    action.trigger()
    layer = editor.session.document.layers[-1]
    assert (layer.type, layer.params["class_name"], layer.params["config"]) == (
        "keras", "Conv1D", KERAS_STARTERS["Conv1D"])


def test_another_class_starts_from_its_own_config_and_a_bad_config_is_not_applied(qtbot):
    spec = from_dict({"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "keras", "class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 2}}]})
    editor = editor_for(qtbot, spec)
    card = editor.cards[0]
    chooser = card.param_widget("class_name")
    chooser.setCurrentText("RepeatVector")
    chooser.lineEdit().editingFinished.emit()
    assert editor.session.document.layers[0].params == {"class_name": "RepeatVector", "config": {"n": 3}}
    assert card.param_widget("config").text() == '{"n": 3}'
    config = card.param_widget("config")
    config.setText('{"n": 5')
    config.editingFinished.emit()
    assert editor.session.document.layers[0].params["config"] == {"n": 3}
    assert "keeps its last config" in config.toolTip()
    config.setText('{"n": 5}')
    config.editingFinished.emit()
    assert editor.session.document.layers[0].params["config"] == {"n": 5}
    chooser.setCurrentText("not a class!")
    chooser.lineEdit().editingFinished.emit()
    assert editor.session.document.layers[0].params["class_name"] == "RepeatVector"


def test_a_card_of_a_branch_or_merge_names_its_inputs(qtbot):
    spec = from_dict({"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "lstm", "name": "a", "return_sequences": True},
        {"type": "lstm", "name": "b", "return_sequences": True, "inputs": ["<input>"]},
        {"type": "keras", "class_name": "Add", "config": {}, "inputs": ["a", "b"]}]})
    editor = editor_for(qtbot, spec)
    assert not hasattr(editor.cards[0], "inputs_label")
    assert editor.cards[1].inputs_label.text() == "from the input"
    assert editor.cards[2].inputs_label.text() == "from a, b"


def test_a_bidirectional_card_without_merge_says_where_its_backward_output_goes(qtbot):
    spec = from_dict({"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "gru", "name": "bi", "units": 3, "return_sequences": True, "bidirectional": True, "merge_mode": None},
        {"type": "keras", "class_name": "Concatenate", "config": {}, "inputs": ["bi", "bi/backward"]}]})
    editor = editor_for(qtbot, spec)
    assert editor.cards[1].inputs_label.text() == "from bi, bi/backward"
    card = editor.cards[0]
    card.show_shapes((None, None, 3), (2, 5, 3), "carries")
    assert "output&nbsp;=&nbsp;forward&nbsp;·&nbsp;backward&nbsp;(None,&nbsp;None,&nbsp;3)&nbsp;as&nbsp;bi/backward" in \
        card.badge_label.text()


def test_a_shared_layer_is_one_card_that_lists_its_further_calls(qtbot):
    spec = from_dict({"input": {"kind": "features", "features": 3}, "layers": [
        {"type": "gru", "name": "twice", "units": 3, "return_sequences": True, "calls": [["twice"]]},
        {"type": "global_average_pooling", "inputs": ["twice/call/1"]}]})
    editor = editor_for(qtbot, spec)
    assert len(editor.cards) == 2
    assert editor.cards[0].calls_label.text() == "also applied to twice → twice/call/1"
    assert not hasattr(editor.cards[1], "calls_label")


def test_a_card_called_by_parameter_and_with_options_says_how_it_is_called(qtbot):
    spec = from_dict({"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "lstm", "name": "lstm", "units": 3, "return_sequences": True},
        {"type": "keras", "name": "attend", "class_name": "MultiHeadAttention", "config": {"num_heads": 1,
                                                                                          "key_dim": 2},
         "inputs": ["lstm", "<input>"], "arguments": ["query", "value"], "returns": 2,
         "options": {"use_causal_mask": True, "return_attention_scores": True}}]})
    editor = editor_for(qtbot, spec)
    card = editor.cards[1]
    assert card.inputs_label.text() == "from query=lstm, value=the input"
    assert card.options_label.text() == "called with use_causal_mask=True, return_attention_scores=True"
    assert card.returns_label.text() == "also returns attend/output/1"
    assert not hasattr(editor.cards[0], "returns_label")


def test_a_shared_layer_called_on_a_layer_below_lists_every_tensor_each_call_gives(qtbot):
    spec = from_dict({"input": {"kind": "features", "features": 3}, "layers": [
        {"type": "gru", "name": "g", "units": 3, "return_sequences": True, "return_state": True, "calls": [["d"]]},
        {"type": "time_distributed_dense", "name": "d", "units": 3}], "outputs": ["g/call/1", "g/call/1/state/h"]})
    editor = editor_for(qtbot, spec)
    assert editor.cards[0].calls_label.text() == "also applied to d → g/call/1, g/call/1/state/h"


def test_a_layer_given_a_mask_the_model_computes_says_where_it_comes_from(qtbot):
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 9}, "layers": [
        {"type": "keras", "name": "nonzero", "class_name": "ops.numpy.NotEqual", "config": {},
         "inputs": ["<input>"], "arguments": ["x1"], "options": {"x2": 0}},
        {"type": "embedding", "name": "emb", "inputs": ["<input>"]},
        {"type": "lstm", "name": "lstm", "mask": "nonzero"}]})
    editor = editor_for(qtbot, spec)
    assert editor.cards[2].mask_label.text() == "mask from nonzero"
    assert not hasattr(editor.cards[1], "mask_label")


def test_a_call_started_from_states_says_which(qtbot):
    spec = from_dict({"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "lstm", "name": "dec", "units": 2, "return_sequences": True, "return_state": True,
         "calls": [{"inputs": ["head"], "initial_state": ["dec/state/h", "dec/state/c"]}]},
        {"type": "time_distributed_dense", "name": "head", "units": 2}],
        "outputs": ["head", "dec/call/1"]})
    editor = editor_for(qtbot, spec)
    assert editor.cards[0].calls_label.text() == ("also applied to head from dec h, dec c → dec/call/1, "
                                                  "dec/call/1/state/h, dec/call/1/state/c")
    spec.layers[0].call_masks = ["head"]
    assert editor_for(qtbot, spec).cards[0].calls_label.text().startswith(
        "also applied to head from dec h, dec c with mask head → dec/call/1")
