"""The window of an encoder model that returns its states (`keras.Model(i, [out, h, c])`): one output plot per
output, each named and showing model.predict's values. The model is written here with plain Keras and saved as
.keras."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from explorer.core import keras_io

TOKENS = [[3, 7, 1, 9, 4, 2], [5, 2, 4], [8, 8, 6, 1]]


def encoder():
    i = keras.Input((None,), dtype="int32")
    out, h, c = layers.LSTM(4, return_state=True, name="encoder")(layers.Embedding(20, 3, mask_zero=True)(i))
    return keras.Model(i, [out, h, c])


def test_the_window_shows_each_state_the_model_returns(make_window, qtbot, tmp_path):
    keras.utils.set_random_seed(3)
    model = encoder()
    model.save(tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.sequences = "\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n"
    window = make_window(spec, source=str(tmp_path / "model.keras"))
    qtbot.waitUntil(lambda: window.session.result is not None and window.session.state.current, timeout=60000)
    panel = window.plots
    assert [part.plot.isVisible() for part in panel.outputs] == [True, True, True]
    titles = [part.plot.titleLabel.text for part in panel.outputs]
    assert ["<b>encoder</b>" in titles[0], "<b>encoder state h</b>" in titles[1],
            "<b>encoder state c</b>" in titles[2]] == [True, True, True]
    panel.select(row=1)
    predicted = model.predict(keras.utils.pad_sequences(TOKENS, padding="post"), verbose=0)
    for part, expected in zip(panel.outputs, predicted):
        np.testing.assert_allclose(np.asarray(part.bars.bars.opts["height"]), expected[1], atol=1e-5)
