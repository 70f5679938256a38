"""Saliency controls and the demo panel (Graves's rows, replayed over time).

The demo panel follows the figure in Graves's "Supervised Sequence
Labelling with Recurrent Neural Networks" (2012, fig. 9.x) and "Generating
Sequences With Recurrent Neural Networks" (2013): on one time axis, the
network's output probabilities, its memory-cell states, the writing, and the
gradient magnitude along the writing. A playhead replays the line as it was
written: the ink appears up to the point the current output frame came from.
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from .canvas import draw_polyline, pen_widths
from .colors import cells_rgb, heat_rgb, normalise
from .explain import METHODS, DemoRows

log = logging.getLogger(__name__)

ROW_TITLES = ("Outputs", "Memory cells", "Writing", "Gradient")


class SaliencyPanel(QWidget):
    """Method chooser, status line and export button of the saliency view.

    Signals:
        methodChanged(str): a key of :data:`~inkread.gui.explain.METHODS`.
        clearRequested(): remove the heat overlay.
        exportRequested(): save the canvas with its overlay as PNG.
    """

    methodChanged = Signal(str)
    clearRequested = Signal()
    exportRequested = Signal()
    #: the status while no character is explained
    HINT = "Click a recognised character in the text, or right-click it on the canvas, to see which ink drove it."

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.method = QComboBox(self)
        for key, label in METHODS.items():
            self.method.addItem(label, key)
        self.method.currentIndexChanged.connect(
            lambda _: self.methodChanged.emit(self.method.currentData()))
        self.status = QLabel(self.HINT, self)
        self.status.setWordWrap(True)
        self.clear_button = QPushButton("Clear heat", self)
        self.clear_button.clicked.connect(self.clearRequested)
        self.export_button = QPushButton("Export view...", self)
        self.export_button.setToolTip("Save the canvas with the heat overlay as PNG")
        self.export_button.clicked.connect(self.exportRequested)
        row = QHBoxLayout()
        row.addWidget(QLabel("Method:", self))
        row.addWidget(self.method, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    def current_method(self) -> str:
        return self.method.currentData()

    def set_method(self, key: str) -> None:
        i = self.method.findData(key)
        if i >= 0:
            self.method.setCurrentIndex(i)

    def set_status(self, text: str) -> None:
        self.status.setText(text)


def _image(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> QImage (copied, so the array may go)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()


class DemoView(QWidget):
    """Draws :class:`DemoRows` as four stacked rows with a playhead."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.rows: Optional[DemoRows] = None
        self.frame: Optional[int] = None  # playhead; None = show everything
        self.message = "Recognise a line, then press Replay."
        self._images: tuple[QImage, QImage] | None = None
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumHeight(160)

    def sizeHint(self) -> QSize:
        return QSize(900, 260)

    def set_rows(self, rows: Optional[DemoRows]) -> None:
        self.rows = rows
        self.frame = None
        self._images = None
        if rows is not None:
            probs = np.clip(rows.probs.T, 0, 1)[::-1]  # (K, T), first class on top
            self._images = (_image(heat_rgb(probs.reshape(-1)).reshape(*probs.shape, 3)),
                            _image(cells_rgb(rows.cells.T)))  # cells (H, T)
        self.update()

    def num_frames(self) -> int:
        return 0 if self.rows is None else int(self.rows.probs.shape[0])

    def _row_rects(self) -> list[QRectF]:
        left, gap = 96.0, 6.0
        h = (self.height() - 5 * gap) / 4
        return [QRectF(left, gap + i * (h + gap), self.width() - left - gap, h) for i in range(4)]

    def paintEvent(self, ev: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(255, 255, 255))
        painter.setRenderHint(QPainter.Antialiasing)
        if self.rows is None:
            painter.setPen(QColor(110, 110, 110))
            painter.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, self.message)
            return
        rects = self._row_rects()
        for title, rect in zip(ROW_TITLES, rects):
            painter.setPen(QColor(60, 60, 60))
            painter.drawText(QRectF(4, rect.top(), 88, rect.height()), Qt.AlignVCenter, title)
        painter.drawImage(rects[0], self._images[0])
        painter.drawImage(rects[1], self._images[1])
        self._draw_ink(painter, rects[2], None)
        self._draw_ink(painter, rects[3], normalise(self.rows.grad))
        self._draw_playhead(painter, rects)

    def _ink_view(self, rect: QRectF) -> tuple[float, float, float]:
        x0, y0, x1, y1 = self.rows.ink.bbox()
        s = min(rect.width() / max(x1 - x0, 1e-9), rect.height() / max(y1 - y0, 1e-9))
        return s, rect.left() - s * x0, rect.top() + (rect.height() - s * (y1 - y0)) / 2 - s * y0

    def _draw_ink(self, painter: QPainter, rect: QRectF, levels: Optional[np.ndarray]) -> None:
        s, dx, dy = self._ink_view(rect)
        upto = np.inf if self.frame is None else float(self.rows.frame_points[self.frame])
        start = 0
        for st in self.rows.ink.strokes:
            n = len(st)
            idx = np.arange(start, start + n)
            x, y = st.x * s + dx, st.y * s + dy
            if levels is not None:
                draw_polyline(painter, x, y, pen_widths(None, n) * (1 + levels[idx]),
                              colors=heat_rgb(levels[idx]))
            else:
                done = idx <= upto
                draw_polyline(painter, x, y, pen_widths(None, n), color=QColor(215, 215, 215))
                if done.any():
                    k = int(done.sum())
                    draw_polyline(painter, x[:k], y[:k], pen_widths(None, k))
            start += n

    def _draw_playhead(self, painter: QPainter, rects: list[QRectF]) -> None:
        if self.frame is None or self.num_frames() == 0:
            return
        t = (self.frame + 0.5) / self.num_frames()
        painter.setPen(QPen(QColor(0, 160, 255), 1.5))
        for rect in rects[:2]:
            x = rect.left() + t * rect.width()
            painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        arr = self.rows.ink.to_array()
        k = int(np.clip(round(float(self.rows.frame_points[self.frame])), 0, len(arr) - 1))
        for rect in rects[2:]:
            s, dx, dy = self._ink_view(rect)
            painter.setBrush(QColor(0, 160, 255))
            painter.drawEllipse(QPointF(arr[k, 0] * s + dx, arr[k, 1] * s + dy), 4, 4)
        painter.setBrush(Qt.NoBrush)

    def image(self) -> QPixmap:
        return self.grab()


class DemoPanel(QWidget):
    """The demo view with Replay and Export buttons and a status line.

    Signals:
        computeRequested(): the rows for the current line are wanted.
        exportRequested(): save the demo view as PNG.
    """

    computeRequested = Signal()
    exportRequested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.view = DemoView(self)
        self.status = QLabel("", self)
        self.replay_button = QPushButton("Replay", self)
        self.replay_button.clicked.connect(self.replay)
        self.export_button = QPushButton("Export PNG...", self)
        self.export_button.clicked.connect(self.exportRequested)
        self.timer = QTimer(self)
        self.timer.setInterval(30)
        self.timer.timeout.connect(self._tick)
        bar = QHBoxLayout()
        bar.addWidget(self.replay_button)
        bar.addWidget(self.export_button)
        bar.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

    def set_rows(self, rows: Optional[DemoRows], message: str = "") -> None:
        self.timer.stop()
        self.view.set_rows(rows)
        if rows is None and message:
            self.view.message = message
            self.view.update()
        self.status.setText(message)

    def replay(self) -> None:
        """Start the replay; asks for fresh rows first when there are none."""
        if self.view.rows is None:
            self.computeRequested.emit()
            return
        self.view.frame = 0
        # Replay at the speed of writing when the ink has real time, else ~3 s.
        dur = self.view.rows.ink.duration if not self.view.rows.ink.time_synthesized else 3.0
        frames = max(self.view.num_frames(), 1)
        self._step = max(1, int(round(frames * 30 / max(dur * 1000.0, 1.0))))
        self.timer.start()
        self.view.update()

    def _tick(self) -> None:
        if self.view.frame is None:
            self.timer.stop()
            return
        nxt = self.view.frame + self._step
        if nxt >= self.view.num_frames():
            self.view.frame = None
            self.timer.stop()
        else:
            self.view.frame = nxt
        self.view.update()
