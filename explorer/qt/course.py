"""The lesson banner over the plots, and the course it belongs to.

`LessonBanner` shows a stack's title and lesson; for a built-in lesson also its place in the course
(explorer/core/course.py), where to look, and Previous / Next. `CourseController` keeps it true:
a lesson opens on the line and layer that show its point, and once the user's edits move the stack
away from the lesson the banner says what changed and offers the lesson back.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QTabWidget, QToolButton, QVBoxLayout, QWidget

from ..core import course, presets
from ..core.spec import StackSpec
from ..session import Session
from .style import escape


class LessonBanner(QFrame):
    """Title — lesson, where to look, the place in the course with Previous / Next, and a note once edited."""

    stepRequested = Signal(int)        # -1 previous lesson, +1 next
    restoreRequested = Signal()        # open the lesson again as it was

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lessonBanner")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(2)
        top = QHBoxLayout()
        top.setSpacing(6)
        self.place_label = QLabel("")
        self.place_label.setWordWrap(True)
        top.addWidget(self.place_label, 1)
        self.previous_button = QPushButton("◀ Previous")
        self.previous_button.setToolTip("The lesson before this one in the course")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("The next lesson in the course")
        self.previous_button.clicked.connect(lambda: self.stepRequested.emit(-1))
        self.next_button.clicked.connect(lambda: self.stepRequested.emit(1))
        top.addWidget(self.previous_button)
        top.addWidget(self.next_button)
        self.fold_button = QToolButton()
        self.fold_button.setCheckable(True)
        self.fold_button.setAutoRaise(True)
        self.fold_button.toggled.connect(self.fold)
        top.addWidget(self.fold_button)
        layout.addLayout(top)
        self.text_label = QLabel("")
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.text_label)
        edited = QHBoxLayout()
        self.edited_label = QLabel("")
        self.edited_label.setWordWrap(True)
        self.edited_label.setTextFormat(Qt.TextFormat.RichText)
        edited.addWidget(self.edited_label, 1)
        self.restore_button = QPushButton("Back to the lesson")
        self.restore_button.setToolTip("Open this lesson again as it was (your edits are dropped)")
        self.restore_button.clicked.connect(self.restoreRequested)
        edited.addWidget(self.restore_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(edited)
        self.edited: list[str] = []
        self.steps: tuple = ()
        self.reached: int | None = None
        self._lead = ""
        self._title = ""
        self.show_stack(None)
        self.fold(False)

    def fold(self, folded: bool) -> None:
        """Folded: one line (the place in the course and the title), for the plots' sake on a small screen."""
        self.fold_button.setChecked(folded)
        self.fold_button.setText("▾" if folded else "▴")
        self.fold_button.setToolTip("Show the lesson's text" if folded else "Fold the lesson to one line")
        self.text_label.setVisible(not folded)
        self._show_place()
        self.show_edits(self.edited)

    @property
    def folded(self) -> bool:
        return self.fold_button.isChecked()

    def _show_place(self) -> None:
        place = self.place_label.property("place") or ""
        title = f" — <b>{escape(self._title)}</b>" if self.folded and self._title else ""
        edited = " · ✎ edited" if self.folded and self.edited else ""
        self.place_label.setText(place + title + edited)
        self.place_label.setVisible(bool(place or title))

    def text(self) -> str:
        """The title and lesson as shown (rich text)."""
        return self.text_label.text()

    def show_stack(self, spec: StackSpec | None, place: tuple[int, int, str] | None = None,
                   look: str | None = None) -> None:
        """A stack's title and lesson (hidden without either); `place`: (index, count, section) in the course;
        the lesson's declared steps, numbered, with what each must show."""
        if spec is None or not (spec.title or spec.lesson):
            self.hide()
            return
        self._lead = f"<b>{escape(spec.title or '')}</b>" + (f" — {escape(spec.lesson)}" if spec.lesson else "")
        if look:
            self._lead += f"<br><b>Where to look:</b> {escape(look)}"
        self.steps = course.steps(spec)
        self.show_reached(None)
        self._title = spec.title or ""
        for button in (self.previous_button, self.next_button):
            button.setVisible(place is not None)
        self.place_label.setProperty("place", None)
        if place is not None:
            index, count, section = place
            self.place_label.setProperty("place", f"<b>Lesson {index + 1} of {count}</b> · {escape(section)}")
            self.previous_button.setEnabled(index > 0)
            self.next_button.setEnabled(index + 1 < count)
        self._show_place()
        self.show_edits([])
        self.show()

    def show_reached(self, reached: int | None) -> None:
        """The steps, the one the stack on screen has reached in bold with a ✓ (None: the lesson as it opened)."""
        self.reached = reached
        lines = []
        for index, step in enumerate(self.steps):
            words = step.words()
            if not words:
                continue
            done = reached is not None and index <= reached
            mark = "✓ " if done else ""
            words = f"<b>{mark}{escape(words)}</b>" if index == reached else f"{mark}{escape(words)}"
            lines.append(f"{len(lines) + 1}. {words}")
        self.text_label.setText(self._lead + ("<br><b>Try it:</b> " + " &nbsp;".join(lines) if lines else ""))

    def show_edits(self, changed: list[str]) -> None:
        """Says that the stack on screen is no longer the lesson's (empty: it still is)."""
        self.edited = list(changed)
        self.edited_label.setVisible(bool(changed) and not self.folded)
        self.restore_button.setVisible(bool(changed))
        if changed:
            shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
            self.edited_label.setText(f"<b>✎ You changed {escape(shown)}</b>: the lesson above describes the "
                                      "stack as it opened.")
        self._show_place()


class CourseController(QObject):
    """Connects the session's documents to the banner: which lesson, where to look, edited or not.
    `open_preset(name) -> bool` opens a neighbouring lesson (asking about unsaved work); `tabs()` gives the plot
    tabs a lesson opens on. `plotWanted(name)` asks for the plot a lesson or its reached step names to be brought
    into view."""

    plotWanted = Signal(str)

    def __init__(self, session: Session, banner: LessonBanner, open_preset: Callable[[str], bool],
                 tabs: Callable[[], QTabWidget | None], parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.open_preset = open_preset
        self.tabs = tabs
        self.banner = banner
        self.lesson: course.Lesson | None = None
        self._original: StackSpec | None = None
        session.events.document.connect(self.document_loaded)
        session.events.edited.connect(lambda _kind: self._edited())
        self.banner.stepRequested.connect(self.step)
        self.banner.restoreRequested.connect(self.restore)

    @property
    def preset(self) -> str | None:
        source = self.session.source
        return source[len(presets.PREFIX):] if source and presets.is_preset(source) else None

    def document_loaded(self) -> None:
        """Shows the session's document: its lesson, its place in the course, its layer, line and tab."""
        session = self.session
        self.lesson = course.lesson(self.preset) if self.preset else None
        self._original = session.spec() if self.preset else None
        if self.lesson is None:
            self.banner.show_stack(session.document)
            return
        index = course.position(self.lesson.preset)
        self.banner.show_stack(session.document, (index, len(course.COURSE), self.lesson.section), self.lesson.look)
        if self.lesson.layer in session.document.layer_names():
            session.select_layer(self.lesson.layer)
        session.select_line(self.lesson.line)
        tabs = self.tabs()
        if tabs is not None:
            titles = [tabs.tabText(index) for index in range(tabs.count())]
            tabs.setCurrentIndex(titles.index(self.lesson.tab) if self.lesson.tab in titles else 0)
        self._want_plot(0)

    def _want_plot(self, reached: int) -> None:
        """The plot named by the reached step, else by the nearest step before it."""
        named = [step.plot for step in self.banner.steps[:reached + 1] if step.plot]
        if named:
            self.plotWanted.emit(named[-1])

    def _edited(self) -> None:
        if self._original is not None:
            current = self.session.spec()
            self.banner.show_edits(course.changes(self._original, current))
            reached = course.reached(self._original, current)
            if reached != self.banner.reached:
                self.banner.show_reached(reached)
                self._want_plot(reached if reached is not None else 0)

    def step(self, step: int) -> bool:
        """Opens the lesson `step` places away in the course; False at either end (or when the user keeps
        their work)."""
        target = course.neighbour(self.preset, step) if self.preset else None
        return target is not None and self.open_preset(target)

    def restore(self) -> bool:
        return self.preset is not None and self.open_preset(self.preset)
