"""Compare batching modes: the four modes run in the engine and come back as one table."""

from __future__ import annotations

import pytest

from explorer.core.leaks import ModeReport
from explorer.core.presets import load_preset
from explorer.qt.compare_dialog import CompareDialog, verdict

RUN_TIMEOUT_MS = 90_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def compare(qtbot, window) -> CompareDialog:
    with qtbot.waitSignal(window.menus.compare_action.triggered, timeout=1000):
        window.menus.compare_action.trigger()
    dialog = window.menus.compare_dialog
    qtbot.waitUntil(lambda: not dialog._request, timeout=RUN_TIMEOUT_MS)
    return dialog


def test_a_masked_stack_agrees_in_every_mode(make_window, qtbot):
    win = make_window()
    settle(qtbot, win)
    dialog = compare(qtbot, win)
    assert dialog.isVisible() and dialog.error is None
    rows = dialog.cells()
    assert [row[0].split(" —")[0] for row in rows] == ["pad", "bucket", "one by one", "chunked"]
    assert rows[0][1] == "✓ reference"
    assert all(row[1].startswith("✓") for row in rows)
    shares = {report.mode: report.padded_share for report in dialog.reports}
    assert rows[0][2] == f"{100 * shares['pad']:.0f}%" and rows[2][2] == "0%"   # one by one pads nothing
    assert all(row[3].endswith(" ms") for row in rows)
    assert "Every mode agrees" in dialog.summary_label.text()
    assert "compared" in win.session.status_text


def test_a_forgotten_mask_differs_with_its_largest_difference(make_window, qtbot):
    win = make_window(load_preset("forgotten_mask_post"), source="preset:forgotten_mask_post")
    settle(qtbot, win)
    dialog = compare(qtbot, win)
    one_by_one = next(report for report in dialog.reports if report.mode == "one_by_one")
    assert one_by_one.agrees is False
    row = dialog.cells()[2]
    assert row[1] == f"✗ max |Δ| {one_by_one.max_abs_difference:.3g}" and row[1].startswith("✗ max |Δ| 0.0")
    assert "Padding changes the results" in dialog.summary_label.text()


def test_a_refused_mode_shows_its_reason(make_window, qtbot):
    win = make_window(load_preset("flatten_fixed_maxlen"), source="preset:flatten_fixed_maxlen")
    settle(qtbot, win)
    dialog = compare(qtbot, win)
    rows = dialog.cells()
    assert rows[1][0].startswith("bucket") and rows[1][1].startswith("refused: ")
    assert "flatten needs every batch padded to maxlen" in rows[1][1]
    assert dialog.table.columnSpan(1, 1) == 3
    assert rows[0][1] == "✓ reference" and rows[3][1].startswith("✓")


def test_bad_sequences_are_refused_before_the_engine(make_window, qtbot):
    win = make_window()
    settle(qtbot, win)
    win.sequence_editor.text_edit.setPlainText("1 2 x\n")
    settle(qtbot, win)
    dialog = win.menus.compare_modes()
    assert not dialog._request and "fix the sequences first" in dialog.error


@pytest.mark.parametrize("report, text", [
    (ModeReport("pad", 0.0, 0.3, 1.0), "✓ reference"),
    (ModeReport("bucket", 2e-7, 0.1, 1.0), "✓ max |Δ| 2.0e-07"),
    (ModeReport("bucket", 0.0, 0.1, 1.0), "✓ identical"),
    (ModeReport("bucket", 0.5, 0.1, 1.0), "✗ max |Δ| 0.5"),
    (ModeReport("chunked", None, None, None, "no"), "refused"),
    (ModeReport("chunked", None, 0.1, 1.0), "— (pad mode did not run)"),
])
def test_verdicts(report, text):
    assert verdict(report)[0] == text


@pytest.mark.parametrize("mask_zero", [False, True])
def test_bucket_mode_shows_the_buckets_as_they_ran(make_window, qtbot, mask_zero):
    """Without a mask each bin of bucket_width runs alone (grid and comparison say so); with mask_zero the
    cost model may merge the bins, and both show the one bucket that ran."""
    spec = load_preset("forgotten_mask_post")
    spec.batching.mode, spec.batching.bucket_width = "bucket", 4
    spec.layers[0].params["mask_zero"] = mask_zero
    bins: dict[int, list[int]] = {}
    for line, text in enumerate(spec.sequences.splitlines(), start=1):
        if text and not text.startswith("#"):
            bins.setdefault((len(text.split()) - 1) // 4, []).append(line)
    expected = "1 bucket ran: lines 2, 3, 4" if mask_zero else \
        f"2 buckets ran: lines {' | '.join(', '.join(map(str, bins[key])) for key in sorted(bins))}"
    win = make_window(spec, source=None)
    settle(qtbot, win)
    assert expected in win.sequence_editor.grid_caption.text()
    dialog = compare(qtbot, win)
    assert dialog.cells()[1][0].endswith(expected)
