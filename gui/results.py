"""The recognised text with clickable characters, the n-best list and the timing line."""
from __future__ import annotations

import logging
import math
from typing import Optional

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (QApplication, QFrame, QLabel, QListWidget, QListWidgetItem, QScrollArea,
                               QSizePolicy, QVBoxLayout, QWidget)

from .colors import PALETTE
from .recognition import PageResult

log = logging.getLogger(__name__)

PLACEHOLDER = "Write on the canvas; the text appears here."


def has_box(char: str, points) -> bool:
    """Whether a recognised character gets a box on the canvas (spaces do not)."""
    return len(points) > 0 and not char.isspace()


class TextView(QWidget):
    """Shows the page's text, one row per line; click a character to select it.

    Characters of the best hypothesis are underlined in the colour of their
    box on the canvas, so text and ink read together.

    Signals:
        charClicked(int, int): (line, index in the line's text).
        lineClicked(int): a line's row was clicked beside its characters.
    """

    charClicked = Signal(int, int)
    lineClicked = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.lines: list[str] = []
        self.boxed: list[set[int]] = []  # per line, indices with a box on the canvas
        self.selected: Optional[tuple[int, int]] = None
        self.placeholder = PLACEHOLDER
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.7)
        self.setFont(font)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Minimum)
        self.setCursor(Qt.PointingHandCursor)
        self.setFocusPolicy(Qt.NoFocus)

    def set_result(self, result: Optional[PageResult]) -> None:
        self.lines = [] if result is None else [r.shown_text for r in result.lines]
        self.boxed = [] if result is None else [
            {i for c, i, pts in r.chars if has_box(c, pts)} if r.chosen == 0 else set()
            for r in result.lines]
        self.selected = None
        self.updateGeometry()
        self.update()

    def set_selected(self, key: Optional[tuple[int, int]]) -> None:
        self.selected = key
        self.update()

    def text(self) -> str:
        return "\n".join(self.lines)

    def _row_height(self) -> float:
        return QFontMetricsF(self.font()).height() * 1.35

    def _text_width(self) -> int:
        fm = QFontMetricsF(self.font())
        return int(max((fm.horizontalAdvance(t) for t in self.lines), default=0)) + 16

    def sizeHint(self) -> QSize:
        return QSize(max(300, self._text_width()), int(self._row_height() * max(len(self.lines), 2) + 12))

    def minimumSizeHint(self) -> QSize:
        # all of the text: the panel's scroll area shows what the window has room for
        return QSize(max(120, self._text_width()), int(self._row_height() * max(len(self.lines), 1) + 12))

    def char_rect(self, line: int, index: int) -> QRectF:
        """Where character ``index`` of ``line`` is drawn (widget coordinates)."""
        fm = QFontMetricsF(self.font())
        text = self.lines[line]
        x0 = 8 + fm.horizontalAdvance(text[:index])
        w = max(fm.horizontalAdvance(text[index]), fm.averageCharWidth() * 0.6)
        return QRectF(x0, 6 + line * self._row_height(), w, self._row_height())

    def char_at(self, pos: QPointF) -> Optional[tuple[int, int]]:
        for line, text in enumerate(self.lines):
            for index in range(len(text)):
                if self.char_rect(line, index).contains(pos):
                    return line, index
        return None

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        hit = self.char_at(ev.position())
        if hit is not None:
            self.charClicked.emit(*hit)
            return
        row = int((ev.position().y() - 6) // self._row_height())
        if 0 <= row < len(self.lines):  # beside the text of a row (after its end, between letters)
            self.lineClicked.emit(row)

    def paintEvent(self, ev: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        if not any(self.lines):
            painter.setPen(self.palette().placeholderText().color())
            message = "(nothing recognised yet)" if self.lines else self.placeholder
            painter.drawText(self.rect().adjusted(8, 6, -8, -6), Qt.TextWordWrap, message)
            return
        fm = QFontMetricsF(self.font())
        color_index = 0
        for line, text in enumerate(self.lines):
            for index, ch in enumerate(text):
                rect = self.char_rect(line, index)
                if (line, index) == self.selected:
                    painter.fillRect(rect, QColor(255, 220, 120))
                if index in self.boxed[line]:
                    col = QColor(*PALETTE[color_index % len(PALETTE)])
                    color_index += 1
                    painter.setPen(QPen(col, 2.0))
                    y = rect.top() + fm.ascent() + fm.descent() + 2
                    painter.drawLine(QPointF(rect.left() + 1, y), QPointF(rect.right() - 1, y))
                painter.setPen(self.palette().text().color())
                painter.drawText(QPointF(rect.left(), rect.top() + fm.ascent()), ch)


class ResultPanel(QWidget):
    """Text view, n-best list of the current line, and timing.

    Signals:
        charClicked(int, int): a character of the text was clicked.
        alternativeChosen(int, int): (line, n-best index) picked in the list.
    """

    charClicked = Signal(int, int)
    alternativeChosen = Signal(int, int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.result: Optional[PageResult] = None
        self.current_line = 0
        self.text = TextView(self)
        # a page of many (or long) lines scrolls here instead of growing the window past the screen
        self.scroll = QScrollArea(self)
        self.scroll.setWidget(self.text)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setMinimumHeight(int(self.text._row_height() * 2 + 14))
        self.nbest_label = QLabel("Alternatives", self)
        self.nbest = QListWidget(self)
        self.nbest.setToolTip("Click an alternative to use it for this line")
        self.nbest.itemClicked.connect(self._item_clicked)
        self.timing = QLabel("", self)
        self.timing.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.timing.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll, 2)
        layout.addWidget(self.nbest_label)
        layout.addWidget(self.nbest, 1)
        layout.addWidget(self.timing)
        self.text.charClicked.connect(self._char_clicked)
        self.text.lineClicked.connect(self.show_line)

    def set_result(self, result: Optional[PageResult]) -> None:
        self.result = result
        self.text.set_result(result)
        n = len(result.lines) if result else 0
        self.current_line = min(self.current_line, max(n - 1, 0))
        if result is not None and result.rerun:
            self.current_line = self._last_changed_line(result)
        self._fill_nbest()
        self._fill_timing()
        QTimer.singleShot(0, self._show_current_line)  # once the text view has its new size

    def _show_current_line(self) -> None:
        """Scroll the text so that the current line (the one being written) is in view."""
        if self.text.lines and self.current_line < len(self.text.lines):
            r = self.text.char_rect(self.current_line, 0) if self.text.lines[self.current_line] else None
            top = int(r.top()) if r is not None else int(6 + self.current_line * self.text._row_height())
            self.scroll.ensureVisible(0, top + int(self.text._row_height() / 2), 0,
                                      int(self.text._row_height()))

    def _last_changed_line(self, result: PageResult) -> int:
        # The line holding the newest stroke is the one the user is writing.
        newest = [max(r.key) if r.key else -1 for r in result.lines]
        return int(max(range(len(newest)), key=newest.__getitem__)) if newest else 0

    def _fill_nbest(self) -> None:
        self.nbest.clear()
        res = self.result
        if not res or not res.lines:
            self.nbest_label.setText("Alternatives")
            return
        line = res.lines[self.current_line]
        many = len(res.lines) > 1
        self.nbest_label.setText(f"Alternatives for line {self.current_line + 1}" if many
                                 else "Alternatives")
        for i, (text, score) in enumerate(line.nbest):
            item = QListWidgetItem(f"{text or '(empty)'}    ({'typed' if math.isnan(score) else f'{score:.2f}'})")
            item.setData(Qt.UserRole, i)
            if i == line.chosen:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.nbest.addItem(item)

    def _fill_timing(self) -> None:
        res = self.result
        if not res or not res.lines:
            self.timing.setText("")
            return
        text = f"Recognised in {res.ms:.0f} ms"
        if len(res.lines) > 1:
            text += f" ({res.rerun} of {len(res.lines)} lines re-run)"
        ms = res.lines[self.current_line].ms
        detail = ", ".join(f"{k} {float(v):.1f}" for k, v in ms.items()
                           if isinstance(v, (int, float)))
        if detail:
            name = f"line {self.current_line + 1}" if len(res.lines) > 1 else "this line"
            text += f"\n{name}, when recognised: {detail} ms"
        self.timing.setText(text)

    def show_line(self, line: int) -> None:
        if self.result and 0 <= line < len(self.result.lines):
            self.current_line = line
            self._fill_nbest()
            self._fill_timing()

    def _char_clicked(self, line: int, index: int) -> None:
        self.show_line(line)
        self.charClicked.emit(line, index)

    def _item_clicked(self, item: QListWidgetItem) -> None:
        self.alternativeChosen.emit(self.current_line, int(item.data(Qt.UserRole)))

    def copy_text(self) -> None:
        QApplication.clipboard().setText(self.text.text())
