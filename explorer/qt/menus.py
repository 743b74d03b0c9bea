"""The window's menus and keyboard shortcuts: Edit, Run, Export and Help, the theme and the icon.

`install_menus(session, runs, window, parts)` is called once by MainWindow and returns a `WindowMenus` holding
every action (tests trigger them), the exporter, and the dialogs it opened. What the menus act on comes from the
session (the result and its state, the source, Live) and the request layer `runs`; `window` is the QMainWindow
whose menu bar they fill, and `parts` (a `MenuParts`) names the widgets and actions they reach. Menus are
placed in the order File, Edit, Run, Export, Help whatever order they are created in (`WindowMenus.menu(title)`
finds or creates one in its place).

Shortcuts: Run F5 / Ctrl+R, Live Ctrl+L, Copy as code Ctrl+Shift+C, Leak check Ctrl+K, Add layer
Ctrl+Shift+A, next / previous sequence Alt+Down / Alt+Up, Undo Ctrl+Z, Redo Ctrl+Shift+Z / Ctrl+Y.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QMainWindow, QMenu, QToolBar, QWidget

from .compare_dialog import CompareDialog
from .exports import PLOT_TITLES, Exporter
from .help import LessonsDialog, ShortcutsDialog, about_box
from .plots import PLOT_NAMES
from .style import is_dark
from .theme import app_icon, follow_system, lesson_style, repolish
from .undo import DocumentHistory, UndoKeys

if TYPE_CHECKING:
    from ..session import Session
    from .files import FileController
    from .plots import PlotsPanel
    from .runs import RunScheduler
    from .sequence_editor import SequenceEditor
    from .shapes_panel import ShapesPanel
    from .stack_editor import StackEditor

MENU_ORDER = ("File", "Edit", "Run", "Export", "View", "Help")


def _plain(title: str) -> str:
    return title.replace("&", "")


@dataclass(frozen=True)
class MenuParts:
    """The widgets and actions of the window that the menus reach."""

    history: DocumentHistory
    files: FileController
    plots: PlotsPanel
    stack_editor: StackEditor
    shapes: ShapesPanel
    sequence_editor: SequenceEditor
    lesson_banner: QWidget
    plot_tabs: QWidget
    combos: tuple[QComboBox, ...]         # Alt+Down / Alt+Up step the sequences there too
    live_check: QCheckBox
    run_action: QAction
    cancel_action: QAction
    code_action: QAction
    leak_check: Callable[[], None]
    restart_engine: Callable[[], None]
    open_preset: Callable[[str], bool]


class WindowMenus(QObject):
    def __init__(self, session: Session, runs: RunScheduler, window: QMainWindow, parts: MenuParts):
        super().__init__(window)
        self.session = session
        self.runs = runs
        self.window = window
        self.parts = parts
        self.exporter = Exporter(session, runs, parts.plots, window)
        parts.plots.exportRequested.connect(lambda name, fmt: self.exporter.export_plot(name, fmt))
        self.compare_dialog: CompareDialog | None = None
        self.lessons_dialog: LessonsDialog | None = None
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.about_dialog = None
        self._build_file()
        self._build_edit()
        self._build_run()
        self._build_export()
        self._build_help()
        self._keys = UndoKeys(parts.history, self)
        text_edit = parts.sequence_editor.text_edit
        text_edit.setUndoRedoEnabled(False)      # one history for the whole document: the window's
        text_edit.installEventFilter(self._keys)
        table = parts.shapes.table
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        table.addAction(self.copy_markdown_action)
        table.addAction(self.export_markdown_action)
        self._theme()

    # --- menus in a fixed order ---

    def menu(self, title: str) -> QMenu:
        """The menu called `title` (File, Edit, Run, Export, Help …), created in its place when missing."""
        bar = self.window.menuBar()
        for action in bar.actions():
            if action.menu() is not None and _plain(action.text()) == _plain(title):
                return action.menu()
        menu = QMenu(title, bar)
        rank = MENU_ORDER.index(_plain(title)) if _plain(title) in MENU_ORDER else len(MENU_ORDER)
        before = None
        for action in bar.actions():
            other = _plain(action.text())
            other_rank = MENU_ORDER.index(other) if other in MENU_ORDER else len(MENU_ORDER)
            if other_rank > rank:
                before = action
                break
        if before is None:
            bar.addMenu(menu)
        else:
            bar.insertMenu(before, menu)
        return menu

    def _action(self, menu: QMenu, text: str, slot, shortcuts=(), tip: str = "") -> QAction:
        action = QAction(text, self.window)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # --- File ---

    def _build_file(self) -> None:
        self.parts.files.fill_menu(self.menu("&File"))

    # --- Edit ---

    def _build_edit(self) -> None:
        window, parts = self.window, self.parts
        menu = self.menu("&Edit")
        menu.addAction(parts.history.undo_action)
        menu.addAction(parts.history.redo_action)
        window.addAction(parts.history.undo_action)      # the shortcuts work with the menu bar hidden too
        window.addAction(parts.history.redo_action)
        menu.addSeparator()
        self.add_layer_action = self._action(menu, "Add layer…", self.add_layer, ["Ctrl+Shift+A"],
                                             "Add a layer after the selected one")
        menu.addSeparator()
        parts.code_action.setShortcut(QKeySequence("Ctrl+Shift+C"))
        parts.code_action.setToolTip("Copy a Keras script that builds this stack (Ctrl+Shift+C)")
        menu.addAction(parts.code_action)
        self.copy_markdown_action = self._action(menu, "Copy shapes table as Markdown",
                                                 lambda: self.exporter.copy_markdown(),
                                                 tip="The shapes table as a Markdown table, to paste in notes")

    def add_layer(self) -> None:
        """Opens the add-layer menu under the stack editor's button."""
        editor = self.parts.stack_editor
        editor.scroll.ensureWidgetVisible(editor.add_button)
        button = editor.add_button
        editor.add_menu.popup(button.mapToGlobal(QPoint(0, button.height())))

    # --- Run ---

    def _build_run(self) -> None:
        window, parts = self.window, self.parts
        menu = self.menu("&Run")
        menu.addAction(parts.run_action)
        menu.addAction(parts.cancel_action)
        self.live_action = QAction("Live: re-run after every edit", window)
        self.live_action.setIconText("Live")
        self.live_action.setCheckable(True)
        self.live_action.setChecked(self.session.live)
        self.live_action.setShortcut(QKeySequence("Ctrl+L"))
        self.live_action.toggled.connect(self.session.set_live)
        self.session.events.run_settings.connect(lambda: self.live_action.setChecked(self.session.live))
        parts.live_check.setToolTip("Re-run after every edit (Ctrl+L)")
        menu.addAction(self.live_action)
        menu.addSeparator()
        self.leak_action = self._action(menu, "Leak check", parts.leak_check, ["Ctrl+K"],
                                        "Run each sequence alone and compare with the padded run")
        parts.shapes.leak_button.setToolTip(parts.shapes.leak_button.toolTip() + " (Ctrl+K)")
        self.compare_action = self._action(menu, "Compare batching modes…", self.compare_modes,
                                           tip="The same sequences in pad, bucket, one-by-one and chunked mode")
        self.restart_engine_action = self._action(menu, "Restart engine", lambda: parts.restart_engine(),
                                                  tip="Start a new engine process and run the stack again")
        menu.addSeparator()
        self.next_sequence_action = self._action(menu, "Next sequence", lambda: self.step_sequence(1),
                                                 ["Alt+Down"], "Show the next sequence in the plots")
        self.previous_sequence_action = self._action(menu, "Previous sequence", lambda: self.step_sequence(-1),
                                                     ["Alt+Up"], "Show the previous sequence in the plots")
        self._sequence_keys = SequenceKeys(self)     # also while a box that opens its list on Alt+Down has focus
        for combo in (*parts.combos, *parts.plot_tabs.findChildren(QComboBox)):
            combo.installEventFilter(self._sequence_keys)

    def step_sequence(self, step: int) -> None:
        """Selects the next (+1) or previous (-1) sequence of the text."""
        lines = self.session.text_check.lines
        if not lines:
            return
        current = self.session.selected_line
        row = lines.index(current) if current in lines else 0
        self.session.select_line(lines[max(0, min(len(lines) - 1, row + step))])

    def compare_modes(self) -> CompareDialog:
        if self.compare_dialog is None:
            self.compare_dialog = CompareDialog(self.session, self.runs, self.window)
        self.compare_dialog.show()
        self.compare_dialog.raise_()
        self.compare_dialog.start()
        return self.compare_dialog

    # --- Export ---

    def _build_export(self) -> None:
        menu = self.menu("E&xport")
        plots = menu.addMenu("Plot")
        self.plot_actions: dict[tuple[str, str], QAction] = {}
        for name in PLOT_NAMES:
            for fmt in ("png", "svg"):
                action = self._action(plots, f"{PLOT_TITLES[name]} as {fmt.upper()}…",
                                      lambda _=False, n=name, f=fmt: self.exporter.export_plot(n, f))
                self.plot_actions[(name, fmt)] = action
            plots.addSeparator()
        plots.aboutToShow.connect(self._update_plot_actions)
        menu.addSeparator()
        self.export_npz_action = self._action(menu, "Run as NumPy arrays (.npz)…", lambda: self.exporter.export_npz(),
                                              tip="Every layer's output, the masks and the weights")
        self.export_csv_action = self._action(menu, "Run as a table (.csv)…", lambda: self.exporter.export_csv(),
                                              tip="One row per number: layer, line, timestep, unit, value, valid")
        menu.addSeparator()
        self.export_markdown_action = self._action(menu, "Shapes table as Markdown (.md)…",
                                                   lambda: self.exporter.export_markdown())
        menu.addAction(self.copy_markdown_action)
        menu.aboutToShow.connect(self._update_export_actions)

    def _update_export_actions(self) -> None:
        has_result = self.session.result is not None and self.session.state.current
        for action in (self.export_npz_action, self.export_csv_action, self.export_markdown_action,
                       self.copy_markdown_action):
            action.setEnabled(has_result)

    def _update_plot_actions(self) -> None:
        has_result = self.session.result is not None and self.session.state.current
        attention = self.parts.plots.attention.shown
        for (name, _fmt), action in self.plot_actions.items():
            action.setEnabled(has_result and (name != "attention" or attention))

    # --- Help ---

    def _build_help(self) -> None:
        menu = self.menu("&Help")
        self.lessons_action = self._action(menu, "Lessons…", self.show_lessons,
                                           tip="The course: every built-in lesson, in order, with where to look")
        self.shortcuts_action = self._action(menu, "Keyboard shortcuts", self.show_shortcuts,
                                             [QKeySequence.StandardKey.HelpContents])
        menu.addSeparator()
        self.about_action = self._action(menu, "About RNN Shape Explorer", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)

    def show_lessons(self) -> LessonsDialog:
        if self.lessons_dialog is None:
            self.lessons_dialog = LessonsDialog(self.parts.open_preset, self.window)
        source = self.session.source or ""
        if source.startswith("preset:"):
            self.lessons_dialog.select(source[len("preset:"):])
        self.lessons_dialog.show()
        self.lessons_dialog.raise_()
        return self.lessons_dialog

    def all_actions(self) -> list[QAction]:
        """Every action of the menus and toolbars, in menu order, for the shortcuts list."""
        found: list[QAction] = []

        def walk(actions) -> None:
            for action in actions:
                if action.menu() is not None:
                    walk(action.menu().actions())
                elif not action.isSeparator():
                    found.append(action)

        walk(self.window.menuBar().actions())
        for bar in self.window.findChildren(QToolBar):
            walk(bar.actions())
        return found

    def show_shortcuts(self) -> ShortcutsDialog:
        self.shortcuts_dialog = ShortcutsDialog(self.all_actions(), self.window)
        self.shortcuts_dialog.show()
        return self.shortcuts_dialog

    def show_about(self):
        self.about_dialog = about_box(self.window)
        self.about_dialog.open()
        return self.about_dialog

    # --- theme and icon ---

    def _theme(self) -> None:
        window = self.window
        app = QApplication.instance()
        if app is not None:
            self.theme = follow_system(app)
            if QGuiApplication.windowIcon().isNull():
                app.setWindowIcon(app_icon())
        window.setWindowIcon(app_icon())
        self._restyle()
        window.installEventFilter(self)

    def _restyle(self) -> None:
        self.parts.lesson_banner.setStyleSheet(lesson_style(is_dark(self.window.palette())))

    def _palette_changed(self) -> None:
        self._restyle()
        repolish(self.window)        # the layer cards and the FC box use palette(base) in their style sheets

    def eventFilter(self, watched, event) -> bool:
        if watched is self.window and event.type() in (QEvent.Type.PaletteChange,
                                                       QEvent.Type.ApplicationPaletteChange):
            self._palette_changed()
        return False


class SequenceKeys(QObject):
    """Alt+Down / Alt+Up step through the sequences even in a combo box, which would open its list instead."""

    def __init__(self, menus: WindowMenus):
        super().__init__(menus)
        self.menus = menus

    def eventFilter(self, watched, event) -> bool:
        if event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) \
                and event.modifiers() == Qt.KeyboardModifier.AltModifier \
                and event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            if event.type() == QEvent.Type.KeyPress:
                self.menus.step_sequence(1 if event.key() == Qt.Key.Key_Down else -1)
            event.accept()
            return True
        return False


def install_menus(session: Session, runs: RunScheduler, window: QMainWindow, parts: MenuParts) -> WindowMenus:
    return WindowMenus(session, runs, window, parts)
