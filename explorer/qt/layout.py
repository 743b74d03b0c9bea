"""How the window fits its screen, from 1024 × 768 to 4K, and its presentation mode.

- The plots are the central widget, under the lesson banner, in tabs ("Outputs", "Inside the cell"),
  each in a scroll area: every plot keeps a view box of at least `MIN_VIEW` pixels (its title and
  axes come on top), and when the window is short the plots scroll instead of shrinking to strips.
  The FC-input plot and the output plots (one per model output) sit side by side when there is room, one
  above the other when not.
- The stack editor, the shapes panel and the sequences are docks (View menu: show, hide, float,
  move). On a window narrower than `WIDE` (after the presentation scale) the shapes panel becomes a
  tab beside the stack editor; on one shorter than `TALL` the sequences do too, so that the plots
  get the height. A toolbar goes on a row of its own when the row before has no room for it.
- The window never opens larger than the screen it is on (`fit_to_screen`).
- Presentation mode: Ctrl+= / Ctrl+− / Ctrl+0 scale the fonts of every panel, the tables' rows and the
  plots' labels (`Zoom`, remembered under `KEY_SCALE`); F11 is full screen; Focus puts the plots first
  and the editors out of the way.

Room for more: `WindowLayout.add_plot_tab(title, panel, view)` adds a tab of plots (the panel's
`set_text_scale`, if it has one, follows the presentation scale); `add_plot_view(view)` gives the
plots of another pyqtgraph GraphicsLayoutWidget the same minimum view box; `add_panel(title, widget)`
adds a dock, tabbed with the shapes panel and listed in the View menu (its `set_text_scale` follows too).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFont, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QBoxLayout, QDockWidget, QFrame, QMainWindow,
                               QScrollArea, QTabBar, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from . import style

if TYPE_CHECKING:
    from ..session import Session
    from .plots.cell import CellPanel
    from .plots import PlotsPanel
    from .runs import RunScheduler
    from .stack_editor import StackEditor

MIN_VIEW = (280, 110)              # the smallest readable plot area, in pixels
WIDE = 1500                        # narrower (in unscaled pixels): the shapes panel is a tab beside the stack
COMPACT_SCALE = 1.25               # from this text scale up, a narrow window's layer cards take one parameter a row
SEQUENCES_SHARE = 0.22             # the share of a tall window's height the sequences dock takes
TALL = 900                         # shorter: the sequences are a tab there too, and the plots get the height
SCALES = (0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
TRAINING = "Training"              # the Training panel's dock, which a lesson may bring forward
KEY_SCALE = "view/scale"
KEY_ARRANGEMENT = "view/arrangement"
MAX_FIT_PASSES = 6                 # a scroll bar that comes and goes could otherwise re-fit the plots for ever
SCREEN_MARGIN = 0.96               # a window opens on at most this much of the screen


def fit_to_screen(window: QWidget, screen_rect: QRect | None = None) -> bool:
    """Shrinks and moves `window` onto the available area of its screen; True when it had to."""
    if screen_rect is None:
        screen = window.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return False
        screen_rect = screen.availableGeometry()
    if window.layout() is not None:
        window.layout().activate()          # the minimum size of the docks as they are now, not as they were
    frame = window.frameGeometry()
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    width = min(window.width(), int(screen_rect.width() * SCREEN_MARGIN) - extra_w)
    height = min(window.height(), int(screen_rect.height() * SCREEN_MARGIN) - extra_h)
    changed = (width, height) != (window.width(), window.height())
    if changed:
        window.resize(max(width, 1), max(height, 1))
    frame = window.frameGeometry()
    x = min(max(frame.x(), screen_rect.left()), screen_rect.right() - frame.width() + 1)
    y = min(max(frame.y(), screen_rect.top()), screen_rect.bottom() - frame.height() + 1)
    if (x, y) != (frame.x(), frame.y()):
        window.move(x, y)
        changed = True
    return changed


def _is_plot(item) -> bool:
    """A plot with a view box (a colour bar is a PlotItem too, but keeps its own width)."""
    return isinstance(item, pg.PlotItem) and not isinstance(item, pg.ColorBarItem)


def _arrangement_name(wide: bool, tall: bool) -> str:
    return f"{'wide' if wide else 'narrow'}-{'tall' if tall else 'short'}"


def nearest_scale(value: float) -> float:
    return min(SCALES, key=lambda scale: abs(scale - value))


class PlotFit(QObject):
    """Keeps every plot of some pyqtgraph views at least MIN_VIEW large: each plot's minimum size is its
    title and axes plus MIN_VIEW, each view's minimum height the sum of its rows. `fitted` once the plots are
    laid out."""

    fitted = Signal()

    def __init__(self, window: QMainWindow, scroll: QScrollArea, plots: PlotsPanel):
        super().__init__(window)
        self.window = window
        self.scroll = scroll
        self.plots = plots
        self.views: list = []
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self.fit)
        self._passes = 0                  # passes since the last outside change (a guard against see-sawing)
        self.side_by_side = True
        self._vectors_key: tuple | None = (True, 2)   # (side by side, how many): as the panel places them first
        plots.vectorsChanged.connect(self._vectors_changed)
        self.mouse = PlotMouse(self)
        scroll.viewport().installEventFilter(self)

    def add_view(self, view) -> None:
        self.views.append(view)
        view.installEventFilter(self)
        self.mouse.watch(view)
        grid = view.ci.layout
        for index in range(grid.count()):      # a plot shown again must get its minimum back at once
            item = grid.itemAt(index).graphicsItem()
            if _is_plot(item):
                item.visibleChanged.connect(self.schedule)
        self.schedule()

    def schedule(self) -> None:
        self._passes = 0
        self._pending.start()

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._pending.start()         # often our own doing: the passes go on counting
        return False

    def _vectors_changed(self) -> None:
        """An output plot came or went: watched like the others, and every vector plot placed again."""
        for part in self.plots.outputs:
            if not part.plot.property("fit_watched"):
                part.plot.setProperty("fit_watched", True)
                part.plot.visibleChanged.connect(self.schedule)
        self._vectors_key = None
        self.schedule()

    def _arrange_vectors(self) -> bool:
        """The FC input and the outputs side by side when they all fit at MIN_VIEW width, else one above the
        other."""
        plots = self.plots
        vectors = [part.plot for part in plots.vector_parts()]
        layout = plots.vector_view.ci
        needed = sum(max(plot.minimumWidth(), MIN_VIEW[0]) for plot in vectors) + 24 * (len(vectors) - 1)
        side_by_side = self.scroll.viewport().width() >= needed
        if (side_by_side, len(vectors)) == self._vectors_key:
            return False
        self._vectors_key = (side_by_side, len(vectors))
        self.side_by_side = side_by_side
        plots.vector_columns = len(vectors) if side_by_side else 1
        for position, plot in enumerate(vectors[1:], 1):
            layout.removeItem(plot)
            layout.addItem(plot, row=0 if side_by_side else position, col=position if side_by_side else 0)
        return True

    @staticmethod
    def _view_minimum(view) -> QSize:
        """The plots' minimums summed over the view's rows and columns (other items at their preferred size)."""
        grid = view.ci.layout
        heights: dict[int, float] = {}
        widths: dict[int, float] = {}
        for row in range(grid.rowCount()):
            for column in range(grid.columnCount()):
                item = grid.itemAt(row, column)
                graphics = item.graphicsItem() if item is not None else None
                if graphics is None or not graphics.isVisible():
                    continue
                plot = _is_plot(graphics)
                size = graphics.minimumSize() if plot else graphics.effectiveSizeHint(Qt.SizeHint.PreferredSize)
                heights[row] = max(heights.get(row, 0.0), size.height() if plot else 0.0)
                widths[column] = max(widths.get(column, 0.0), size.width())
        left, top, right, bottom = grid.getContentsMargins()
        frame = 2 * view.frameWidth() + 4
        width = sum(widths.values()) + grid.horizontalSpacing() * max(len(widths) - 1, 0) + left + right + frame
        height = sum(heights.values()) + grid.verticalSpacing() * max(len(heights) - 1, 0) + top + bottom + frame
        return QSize(math.ceil(width), math.ceil(height))

    def fit(self) -> None:
        """One pass: decorations are measured as laid out now (they do not depend on the height)."""
        changed = False
        for view in self.views:
            grid = view.ci.layout
            for index in range(grid.count()):
                plot = grid.itemAt(index).graphicsItem()
                if not _is_plot(plot):
                    continue
                if not plot.isVisible():         # a hidden plot gives its room back
                    if plot.minimumHeight() or plot.minimumWidth():
                        plot.setMinimumSize(0, 0)
                        changed = True
                    continue
                box = plot.vb
                # a companion plot narrower by design (bars beside a heatmap) keeps its own width
                width = min(math.ceil(plot.size().width() - box.size().width()) + MIN_VIEW[0] + 1,
                            plot.maximumWidth())
                height = math.ceil(plot.size().height() - box.size().height()) + MIN_VIEW[1] + 1
                if abs(plot.minimumHeight() - height) > 0.5 or abs(plot.minimumWidth() - width) > 0.5:
                    plot.setMinimumSize(width, height)
                    changed = True
        if self.plots.vector_view in self.views:
            changed = self._arrange_vectors() or changed
        for view in self.views:
            minimum = self._view_minimum(view)
            if view.minimumSize() != minimum:
                view.setMinimumSize(minimum)
                changed = True
        self._passes += 1
        if changed and self._passes < MAX_FIT_PASSES:
            self._pending.start()  # the new minimums move titles and axes: measure once more
        else:
            self.fitted.emit()


class PlotMouse(QObject):
    """The mouse over the plots as in other scientific apps: the wheel scrolls the column of plots, Ctrl+wheel
    zooms the plot under the pointer (pyqtgraph's own zoom), and a double-click shows that plot whole again."""

    def watch(self, view) -> None:
        view.viewport().installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Wheel and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            scroll = _enclosing_scroll(watched)
            if scroll is not None:
                QApplication.sendEvent(scroll.verticalScrollBar(), event)
                return True
        if kind == QEvent.Type.MouseButtonDblClick and event.button() == Qt.MouseButton.LeftButton:
            view = watched.parent()
            box = _view_box_at(view, event.position().toPoint())
            if box is not None:
                box.autoRange(padding=0)
                return True
        return False


def _enclosing_scroll(widget: QWidget) -> QScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    return parent


def _view_box_at(view, position) -> pg.ViewBox | None:
    for item in view.items(position):
        while item is not None and not isinstance(item, pg.ViewBox):
            item = item.parentItem()
        if item is not None:
            return item
    return None


class Zoom(QObject):
    """The presentation scale: fonts of every widget, table rows, and the plots' labels."""

    def __init__(self, window: QMainWindow, plots: PlotsPanel):
        super().__init__(window)
        self.window = window
        self.panels = [plots]               # plot panels whose titles and axes follow the scale
        app = QApplication.instance()
        if app.property("explorer_base_font") is None:
            app.setProperty("explorer_base_font", QFont(app.font()))
        self.base_font: QFont = app.property("explorer_base_font")
        # the application's font is shared: a window made after another one was scaled starts at that scale
        self.scale = float(app.property("explorer_scale") or 1.0)

    def set_scale(self, scale: float) -> None:
        scale = nearest_scale(scale)
        previous, self.scale = self.scale, scale
        style.set_font_scale(scale)
        app = QApplication.instance()
        font = QFont(self.base_font)
        font.setPointSizeF(self.base_font.pointSizeF() * scale)
        app.setFont(font)
        app.setProperty("explorer_scale", scale)
        # every widget explicitly: widgets under a style sheet do not follow the application's font. All the
        # base sizes are read before any is changed (a child follows its parent's new font at once).
        widgets = []
        for widget in self.window.findChildren(QWidget):
            base = widget.property("explorer_base_pt")
            if base is None and widget.font().pointSizeF() > 0:     # a font sized in pixels is left alone
                base = widget.font().pointSizeF() / previous
                widget.setProperty("explorer_base_pt", base)
            if base is not None:
                widgets.append((widget, base))
        for widget, base in widgets:
            own = QFont(widget.font())
            own.setPointSizeF(base * scale)
            widget.setFont(own)
        for table in self.window.findChildren(QAbstractItemView):
            if hasattr(table, "verticalHeader"):
                table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
                header = table.horizontalHeader()
                base = table.property("explorer_base_column")
                if base is None:
                    base = header.defaultSectionSize() / previous
                    table.setProperty("explorer_base_column", base)
                header.setDefaultSectionSize(int(base * scale))
        for panel in self.panels:
            panel.set_text_scale(scale)


class PlotTabs(QTabWidget):
    """The plot tabs. A panel is shown in a scroll area; `setCurrentWidget(panel)` finds it there too."""

    def page_index(self, widget: QWidget) -> int:
        for index in range(self.count()):
            page = self.widget(index)
            if page is widget or (isinstance(page, QScrollArea) and page.widget() is widget):
                return index
        return -1

    def setCurrentWidget(self, widget: QWidget) -> None:  # noqa: N802 (Qt's name)
        index = self.page_index(widget)
        if index >= 0:
            self.setCurrentIndex(index)


class WindowLayout(QObject):
    """The window's docks, central plots, toolbars and presentation mode (see the module's docstring): it places
    the views it is given in `window`, says the scale to the `session`, keeps it in `settings`, and fits the plots
    again after each run of `runs`."""

    def __init__(self, window: QMainWindow, session: Session, runs: RunScheduler, settings, *, plots: PlotsPanel,
                 lesson_banner: QWidget, stack_editor: StackEditor, shapes: QWidget, sequence_editor: QWidget,
                 cell_panel: CellPanel):
        super().__init__(window)
        self.window = window
        self.session = session
        self.settings = settings
        self.stack_editor = stack_editor
        self.sequence_editor = sequence_editor
        self.cell_panel = cell_panel
        self.plots = plots
        self.panel_docks: dict[str, QDockWidget] = {}     # the docks add_panel made, by title
        window.setDockNestingEnabled(True)
        window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.BottomDockWidgetArea)

        self.plots_scroll = QScrollArea()
        self.plots_scroll.setObjectName("plotsScroll")
        self.plots_scroll.setWidgetResizable(True)
        self.plots_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.plots_scroll.setWidget(plots)
        self.plot_tabs = PlotTabs()            # "Outputs", and the tabs other plot panels add
        self.plot_tabs.setDocumentMode(True)
        self.plot_tabs.addTab(self.plots_scroll, "Outputs")
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(2, 4, 2, 0)
        column.setSpacing(4)
        column.addWidget(lesson_banner)
        column.addWidget(self.plot_tabs, 1)
        window.setCentralWidget(central)

        self.stack_dock = self._dock("Stack", stack_editor)
        self.shapes_dock = self._dock("Shapes", shapes)
        self.sequences_dock = self._dock("Sequences", sequence_editor)
        self.docks = (self.stack_dock, self.shapes_dock, self.sequences_dock)
        self.arrangement: str | None = None     # "wide-tall", "narrow-short" …
        self._sized = False
        self._sequences_height: int | None = None     # the window height the sequences dock was last sized for
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.stack_dock)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.shapes_dock)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.sequences_dock)
        self._place_docks(wide=False, tall=False)   # the most compact first: the window is never shown larger
        #                                             than it was asked to be; it spreads out if it has the room
        self.focused = False
        self._before_focus: list[QDockWidget] = []

        self.plot_fit = PlotFit(window, self.plots_scroll, plots)
        for view in (plots.time_view, plots.vector_view):
            self.plot_fit.add_view(view)
        runs.runFinished.connect(lambda _reply: self.plot_fit.schedule())
        self.wanted_plot: str | None = None       # a plot kept in view while the plots settle, until the user scrolls
        self._tab_chosen = False
        self.plot_fit.fitted.connect(self._scroll_to_wanted)
        self._follow_scroll(self.plots_scroll)
        self.zoom = Zoom(window, plots)
        self._arrange_timer = QTimer(self)
        self._arrange_timer.setSingleShot(True)
        self._arrange_timer.setInterval(0)
        self._arrange_timer.timeout.connect(self.arrange)
        window.installEventFilter(self)
        self._build_actions()

    def fit_to_screen(self) -> bool:
        """Shrinks and moves the window onto its screen (after a restored geometry); True when it had to."""
        return fit_to_screen(self.window)

    def _dock(self, title: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(f"dock-{title.lower()}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        return dock

    # --- room for more ---

    def add_plot_view(self, view) -> None:
        """Another pyqtgraph GraphicsLayoutWidget of plots: each of its plots keeps a MIN_VIEW view box."""
        self.plot_fit.add_view(view)

    def add_plot_tab(self, title: str, panel: QWidget, view=None) -> QScrollArea:
        """Another panel of plots, as a tab beside "Outputs", scrolling when the window is short; the plots of
        its pyqtgraph `view` keep a MIN_VIEW view box."""
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(panel)
        self.plot_tabs.addTab(scroll, title)
        self._follow_scroll(scroll)
        if view is not None:
            self.add_plot_view(view)
        if hasattr(panel, "set_text_scale"):
            self.zoom.panels.append(panel)
            panel.set_text_scale(self.zoom.scale)
        return scroll

    def add_panel(self, title: str, widget: QWidget) -> QDockWidget:
        """Another panel (e.g. training): a dock, tabbed with the shapes panel, listed in the View menu."""
        dock = self._dock(title, widget)
        self.window.tabifyDockWidget(self.shapes_dock, dock)
        self.docks = (*self.docks, dock)
        self.panel_docks[title] = dock
        if getattr(self, "view_menu", None) is not None:
            self._add_toggle(dock)
        if hasattr(widget, "set_text_scale"):
            self.zoom.panels.append(widget)
            widget.set_text_scale(self.zoom.scale)
        return dock

    # --- the plot a lesson names ---

    def show_plot(self, name: str) -> None:
        """Brings a plot into view (its tab, the column scrolled to it) and keeps it there while the plots settle,
        until the user scrolls: a name of PlotsPanel's plots, "gradient" or "gates" (Inside the cell), or
        "accuracy" (the Training panel)."""
        self.wanted_plot = name
        self._tab_chosen = False
        if self.focused:          # Focus: the plots, and only the panel the lesson names
            training = self.panel_docks.get(TRAINING)
            for dock in self.docks:
                dock.setVisible(dock is training and name == "accuracy")
        self.plot_fit.schedule()

    def _follow_scroll(self, scroll: QScrollArea) -> None:
        bar = scroll.verticalScrollBar()
        bar.actionTriggered.connect(self._user_scrolled)
        bar.rangeChanged.connect(lambda _low, _high: self._scroll_to_wanted())   # the column grew or shrank

    def _user_scrolled(self, _action: int) -> None:
        self.wanted_plot = None

    def plot_item(self, name: str):
        """(scroll area, PlotItem) of a plot by name, or None."""
        cell = {"gradient": "gradient_plot", "gates": "gate_plot"}
        if name in cell:
            scroll = self.plot_tabs.widget(self.plot_tabs.page_index(self.cell_panel))
            return scroll, getattr(self.cell_panel, cell[name])
        if name in self.plots.plots():
            return self.plots_scroll, self.plots.plots()[name]
        return None

    def _scroll_to_wanted(self) -> None:
        name, window = self.wanted_plot, self.window
        if name is None or not window.isVisible():
            return
        if name == "accuracy":
            self.wanted_plot = None
            dock = self.panel_docks.get(TRAINING)
            if dock is not None:
                dock.show()
                dock.raise_()
            return
        found = self.plot_item(name)
        if found is None:
            return
        scroll, plot = found
        if not self._tab_chosen:            # once: the user may pick another tab afterwards
            self._tab_chosen = True
            self.plot_tabs.setCurrentWidget(scroll)
        if self.plot_tabs.currentWidget() is not scroll:
            return
        scroll.verticalScrollBar().setValue(0)
        if not plot.isVisible():
            return
        view = plot.scene().views()[0]
        rect = view.mapFromScene(plot.sceneBoundingRect()).boundingRect()
        top = view.mapTo(scroll.widget(), rect.topLeft()).y()
        bottom = top + rect.height()
        bar = scroll.verticalScrollBar()
        viewport = scroll.viewport().height()
        if bottom > viewport:                      # as low as needed to show its bottom, never past its top
            bar.setValue(min(top, bottom - viewport))

    # --- actions and the View menu ---

    def _action(self, text: str, slot, shortcuts=(), tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self.window)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setCheckable(checkable)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.window.addAction(action)     # the keys work in full screen, with the menu bar hidden
        return action

    def _build_actions(self) -> None:
        self.zoom_in_action = self._action("Larger text", lambda: self.zoom_by(1), ["Ctrl+=", "Ctrl++"],
                                           "Presentation: scale the text, tables and plot labels up")
        self.zoom_out_action = self._action("Smaller text", lambda: self.zoom_by(-1), ["Ctrl+-"],
                                            "Presentation: scale the text, tables and plot labels down")
        self.zoom_reset_action = self._action("Actual size", lambda: self.set_scale(1.0), ["Ctrl+0"],
                                              "Text at its normal size")
        self.full_screen_action = self._action("Full screen", self.set_full_screen,
                                               ["F11"],      # not StandardKey.FullScreen: KDE's is Ctrl+Shift+F
                                               "Fill the screen (F11 again to leave)", checkable=True)
        self.focus_action = self._action("Focus on the plots", self.set_focus, ["Ctrl+Shift+F"],
                                         "Plots first: the editors and tables out of the way (again to bring "
                                         "them back)", checkable=True)
        self.focus_action.setIconText("Focus")

    def install_menu(self, menus) -> None:
        """The View menu (after the window's other menus exist)."""
        menu = menus.menu("&View")
        for action in (self.zoom_in_action, self.zoom_out_action, self.zoom_reset_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.full_screen_action)
        menu.addAction(self.focus_action)
        menu.addSeparator()
        self.view_menu = menu
        for dock in self.docks:
            self._add_toggle(dock)
        # a toolbar of its own for the view (Focus: the one key a class needs to find; the panels' toggles join
        # it), so that a toolbar wider than a narrow window at a large scale wraps onto a row instead of hiding
        self.view_bar = QToolBar("View")
        self.view_bar.setObjectName("toolbar-view")
        self.view_bar.setMovable(False)
        self.view_bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.window.addToolBar(self.view_bar)
        self.view_bar.addAction(self.focus_action)

    def _add_toggle(self, dock: QDockWidget) -> None:
        toggle = dock.toggleViewAction()
        toggle.setText(f"{dock.windowTitle()} panel")
        self.view_menu.addAction(toggle)

    # --- presentation ---

    @property
    def scale(self) -> float:
        return self.zoom.scale

    def set_scale(self, scale: float, announce: bool = True) -> None:
        self.zoom.set_scale(scale)
        self.settings.setValue(KEY_SCALE, self.zoom.scale)
        if announce:
            self.session.say(f"text at {self.zoom.scale:.0%} (Ctrl+0: normal size)")
        self._sized = False           # the side docks are sized again for the new text
        self.schedule()
        self.plot_fit.schedule()

    def zoom_by(self, direction: int) -> None:
        index = SCALES.index(nearest_scale(self.zoom.scale))
        self.set_scale(SCALES[max(0, min(len(SCALES) - 1, index + direction))])

    def set_full_screen(self, on: bool) -> None:
        if on:
            self.window.showFullScreen()
        else:
            self.window.showNormal()
        self.full_screen_action.setChecked(on)

    def set_focus(self, on: bool) -> None:
        """Focus: only the plots (and the lesson banner); the docks that were open come back after."""
        if on == self.focused:
            return
        self.focused = on
        if on:
            self._before_focus = [dock for dock in self.docks if dock.isVisible()]
            for dock in self.docks:
                dock.hide()
        else:
            for dock in self._before_focus or list(self.docks):
                dock.show()
        self.focus_action.setChecked(on)
        self.plot_fit.schedule()

    def restore(self, settings) -> None:
        """The remembered scale and arrangement (after the window's state is restored)."""
        value = settings.value(KEY_SCALE, 1.0)
        try:
            scale = float(value)
        except (TypeError, ValueError):
            scale = 1.0
        self.zoom.set_scale(scale)     # also when the application is at that scale already: this window's plots
        arrangement = settings.value(KEY_ARRANGEMENT, "")
        if arrangement:
            self.arrangement = arrangement     # the docks as restored: rearranged only when the size class changes
            wide, tall = self._size_class()
            if arrangement != _arrangement_name(wide, tall):
                self._place_docks(wide, tall)  # restored for a bigger screen: compact before the window shows

    def save(self, settings) -> None:
        settings.setValue(KEY_SCALE, self.zoom.scale)
        if self.arrangement:
            settings.setValue(KEY_ARRANGEMENT, self.arrangement)

    # --- fitting the window ---

    def schedule(self) -> None:
        self._arrange_timer.start()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.window and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.schedule()
            self.plot_fit.schedule()
        return False

    def arrange(self) -> None:
        """Docks side by side or as tabs, and toolbars on one row or two, for the window's size."""
        window = self.window
        scale = self.zoom.scale
        wide, tall = self._size_class()
        wanted = _arrangement_name(wide, tall)
        # a narrow column at a large text scale: one parameter per row on the layer cards (then the docks are
        # sized once the new cards have told the layouts how narrow they can be)
        if self.stack_editor.set_param_pairs(1 if not wide and scale >= COMPACT_SCALE else 2):
            self._sized = False
            self.schedule()
            return
        if (wanted != self.arrangement or not self._sized) and not self.focused and window.isVisible():
            if wanted != self.arrangement:
                self._place_docks(wide, tall)
                self.schedule()          # the sequences dock is sized once the docks have moved
            self._sized = True
            side = min(int(window.width() * (0.24 if wide else 0.38)), int(560 * scale))
            docks, widths = [self.stack_dock], [side]
            if wide:                         # the shapes table's five columns want a little more
                docks.append(self.shapes_dock)
                widths.append(min(int(window.width() * 0.28), int(640 * scale)))
            window.resizeDocks(docks, widths, Qt.Orientation.Horizontal)
            self._sequences_height = None
        elif tall and not self.focused and window.isVisible() and self._sequences_height != window.height():
            # the sequences below take SEQUENCES_SHARE, or what they need, whenever the window's height changes:
            # the rows a window gains go to the plots, not to the dock
            self._sequences_height = window.height()
            height = max(self.sequences_dock.minimumSizeHint().height(), int(window.height() * SEQUENCES_SHARE))
            window.resizeDocks([self.sequences_dock], [height], Qt.Orientation.Vertical)
        self._wrap_toolbars()

    def _size_class(self) -> tuple[bool, bool]:
        """(wide, tall) for the window's size at the presentation scale."""
        scale = self.zoom.scale
        return self.window.width() / scale >= WIDE, self.window.height() / scale >= TALL

    def _place_docks(self, wide: bool, tall: bool) -> None:
        """Tabs are made first and separate docks after, so that the window's minimum size never passes through a
        larger one on the way (Qt would grow the window to it)."""
        window = self.window
        self.arrangement = _arrangement_name(wide, tall)
        right, bottom = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
        if not wide:
            window.tabifyDockWidget(self.stack_dock, self.shapes_dock)
        if not tall:
            window.tabifyDockWidget(self.stack_dock, self.sequences_dock)
        if wide and (window.dockWidgetArea(self.shapes_dock) != right or window.tabifiedDockWidgets(self.shapes_dock)):
            window.addDockWidget(right, self.shapes_dock)
        if tall and (window.dockWidgetArea(self.sequences_dock) != bottom
                     or window.tabifiedDockWidgets(self.sequences_dock)):
            window.addDockWidget(bottom, self.sequences_dock)
        # a tab in the side column: text, batching and grid one above the other
        self.sequence_editor.layout().setDirection(QBoxLayout.Direction.LeftToRight if tall
                                                     else QBoxLayout.Direction.TopToBottom)
        self.stack_dock.raise_()
        for bar in window.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly):
            bar.setElideMode(Qt.TextElideMode.ElideNone)   # whole names on a narrow window, with scroll arrows
            bar.setUsesScrollButtons(True)

    def _wrap_toolbars(self) -> None:
        """Each toolbar stays on the row of the one before while the row has room, else starts a new row."""
        window = self.window
        bars = [bar for bar in window.findChildren(QToolBar) if bar.parent() is window and bar.isVisible()]
        row = 0
        for bar in bars:
            width = bar.sizeHint().width()
            wrap = row > 0 and row + width + 8 > window.width()
            if wrap and not window.toolBarBreak(bar):
                window.insertToolBarBreak(bar)
            elif not wrap and window.toolBarBreak(bar):
                window.removeToolBarBreak(bar)
            row = width if wrap else row + width
