"""`doctor` on the command line: exit status with --fail-on, JSON, and reports that stand alone."""

import base64
import json
from html.parser import HTMLParser

import keras
import numpy as np
import pytest

from explorer import cli

LINES = "3 4 5 6 7 8\n9 10 11\n12 13\n"


def saved(tmp_path, mask_zero: bool):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"),
                              keras.layers.Embedding(20, 8, mask_zero=mask_zero, name="emb"),
                              keras.layers.LSTM(8, name="lstm"), keras.layers.Dense(3, name="head")])
    path = tmp_path / ("clean.keras" if mask_zero else "forgotten_mask.keras")
    model.save(path)
    (tmp_path / "lines.txt").write_text(LINES)
    return str(path), str(tmp_path / "lines.txt")


def test_fail_on_error_exits_1_on_a_forgotten_mask_and_0_on_a_clean_model(tmp_path, capsys):
    model, lines = saved(tmp_path, mask_zero=False)
    assert cli.main(["doctor", model, "--input", lines, "--fail-on", "error"]) == 1
    assert "padding_leak" in capsys.readouterr().out
    assert cli.main(["doctor", model, "--input", lines]) == 0           # without --fail-on it ran: 0
    clean, _ = saved(tmp_path, mask_zero=True)
    assert cli.main(["doctor", clean, "--input", lines, "--fail-on", "error"]) == 0


def test_json_lists_the_findings_and_what_was_checked(tmp_path, capsys):
    model, lines = saved(tmp_path, mask_zero=False)
    assert cli.main(["doctor", model, "--input", lines, "--json", "-", "--padding", "pre"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) >= {"findings", "checked"}
    leak = next(f for f in document["findings"] if f["kind"] == "padding_leak")
    assert set(leak) == {"kind", "severity", "layer", "lines", "evidence", "message", "fix"}
    assert leak["layer"] == "lstm" and leak["severity"] == "error" and leak["lines"] == [2, 3]
    assert "padding_leak" in document["checked"]


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.references = [], []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href"):
                self.references.append(value)
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_the_html_report_has_one_inline_image_per_finding_and_no_outside_reference(tmp_path, capsys):
    from PySide6.QtGui import QImage
    model, lines = saved(tmp_path, mask_zero=False)
    out = tmp_path / "report.html"
    assert cli.main(["doctor", model, "--input", lines, "--maxlen", "4", "--json", str(tmp_path / "r.json"),
                     "--report", str(out)]) == 0
    findings = json.loads((tmp_path / "r.json").read_text())["findings"]
    assert {f["kind"] for f in findings} >= {"padding_leak", "truncation"}
    page = out.read_text()
    parser = Images()
    parser.feed(page)
    assert len(parser.sources) == len(findings)
    assert all(reference.startswith("data:image/png;base64,") for reference in parser.references)
    assert "http:" not in page and "https:" not in page
    for source in parser.sources:           # each decodes as a PNG (Qt's decoder, not ours)
        image = QImage.fromData(base64.b64decode(source.split(",", 1)[1]), "PNG")
        assert not image.isNull() and image.width() > 100
        pixels = np.array([image.pixelColor(x, image.height() // 2).red() for x in range(image.width())])
        assert len(set(pixels.tolist())) > 1      # something is drawn


def test_the_markdown_report_links_images_written_beside_it(tmp_path):
    model, lines = saved(tmp_path, mask_zero=False)
    out = tmp_path / "report.md"
    assert cli.main(["doctor", model, "--input", lines, "--report", str(out)]) == 0
    text = out.read_text()
    assert "## error: padding_leak on `lstm`" in text
    assert "![" in text and (tmp_path / "report-finding-1.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("arguments, message", [
    (["--report", "out.txt"], "must end in .html or .md"),
    (["--fail-on", "info"], "invalid choice"),
    (["--maxlen", "0"], "not a number of steps"),
    (["--mode", "sideways"], "invalid choice"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, arguments, message):
    model, lines = saved(tmp_path, mask_zero=True)
    assert cli.main(["doctor", model, "--input", lines, *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_a_pad_value_the_masking_layer_does_not_mask_is_fixed_by_the_pad_value(capsys):
    assert cli.main(["doctor", "preset:sensor_features", "--pad-value", "1.5", "--json", "-"]) == 0
    leak = next(f for f in json.loads(capsys.readouterr().out)["findings"] if f["kind"] == "padding_leak")
    assert leak["fix"] == "pad value 0" and leak["layer"] == "gru_1"
    assert cli.main(["doctor", "preset:forgotten_mask_post", "--pad-value", "1.5"]) == 2
    assert "--pad-value: must be a token id" in capsys.readouterr().err
