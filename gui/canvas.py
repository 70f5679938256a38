"""The writing canvas: records pen, mouse and touch input as strokes and draws them.

Input is recorded in *ink coordinates*: on a fresh page they are the
canvas's logical pixels; after opening a file the view is fitted to the ink
and new strokes are stored in the file's own units (the inverse of the
view mapping), so they line up with what was loaded. Time comes from the
input events' own timestamps (milliseconds, taken when the device reported
the point rather than when Qt got round to delivering it), re-based so the
page's time axis stays monotonic across strokes and after loading a file.

Drawing: finished strokes are rendered once into a cached pixmap; the
stroke being written is drawn live on top, with quadratic curves through
the midpoints of successive points and a width that follows pen pressure.
Overlays (character boxes and saliency heat) are drawn over the strokes.

Erasing: in eraser mode (``erasing``), or with a tablet pen's eraser end, a
drag (or a tap) removes every stroke it passes within ``ERASER_RADIUS``
pixels of, as one undoable edit.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QColor, QEventPoint, QFont, QInputDevice, QMouseEvent, QPainter,
                           QPainterPath, QPaintEvent, QPen, QPixmap, QPointingDevice, QTabletEvent,
                           QTouchEvent)
from PySide6.QtWidgets import QSizePolicy, QWidget

from inkread.ink import Stroke

from .colors import PALETTE, heat_rgb
from .document import InkDocument
from inkread.lines import group_lines

log = logging.getLogger(__name__)

#: Stroke width in logical pixels at mid pressure.
BASE_WIDTH = 2.6
#: Distance between guide lines on an empty page, logical pixels.
LINE_SPACING = 120.0
#: Gap assumed between a loaded ink's last stroke and the first new one, seconds.
GAP_AFTER_LOAD = 0.3
#: How close (logical pixels) the eraser must pass to a stroke to remove it.
ERASER_RADIUS = 8.0
#: Zoom limits, relative to the fitted view, and the step of one wheel notch or key press.
MIN_ZOOM, MAX_ZOOM, ZOOM_STEP = 0.25, 8.0, 1.25


@dataclass(frozen=True)
class CharBox:
    """A recognised character's box on the ink.

    Attributes:
        key: (line, index in the line's text), as the text view names it.
        char: the character.
        rect: (xmin, ymin, xmax, ymax) in ink coordinates.
    """

    key: tuple[int, int]
    char: str
    rect: tuple[float, float, float, float]


@dataclass
class View:
    """Ink -> widget mapping: widget = ink * scale + offset."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def to_widget(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x * self.scale + self.dx, y * self.scale + self.dy

    def to_ink(self, p: QPointF) -> tuple[float, float]:
        return (p.x() - self.dx) / self.scale, (p.y() - self.dy) / self.scale


def pen_widths(pressure: Optional[np.ndarray], n: int, scale: float = 1.0) -> np.ndarray:
    """(n,) stroke widths in pixels from pressure in [0, 1] (None: mouse, constant)."""
    if pressure is None:
        return np.full(n, BASE_WIDTH * scale)
    p = np.clip(np.asarray(pressure, dtype=np.float64), 0.0, 1.0)
    return BASE_WIDTH * scale * (0.35 + 1.3 * p)


def draw_polyline(painter: QPainter, x: np.ndarray, y: np.ndarray, widths: np.ndarray,
                  colors: Optional[np.ndarray] = None, color: QColor = QColor(20, 20, 30)) -> None:
    """Draw one stroke smoothly (widget coordinates).

    Args:
        x, y: (n,) point positions.
        widths: (n,) pen width at each point.
        colors: optional (n, 3) uint8 RGB per point; otherwise ``color``.
    """
    n = len(x)
    if n == 0:
        return
    if n == 1 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        pen = QPen(color if colors is None else QColor(*map(int, colors[0])), float(widths[0]))
        pen.setCapStyle(Qt.RoundCap)
        painter.setPen(pen)
        painter.drawPoint(QPointF(float(x[0]), float(y[0])))
        return
    mx, my = (x[:-1] + x[1:]) / 2, (y[:-1] + y[1:]) / 2
    uniform = colors is None and np.ptp(widths) < 0.05
    path = QPainterPath(QPointF(float(x[0]), float(y[0])))
    pen = QPen(color, float(widths[0]), Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin)
    for i in range(n - 1):
        end = QPointF(float(mx[i]), float(my[i])) if i < n - 2 else QPointF(float(x[-1]), float(y[-1]))
        if not uniform:
            path = QPainterPath(path.currentPosition())
        if i == 0:
            path.lineTo(end)
        else:
            path.quadTo(QPointF(float(x[i]), float(y[i])), end)
        if not uniform:
            pen.setWidthF(float((widths[i] + widths[i + 1]) / 2))
            if colors is not None:
                pen.setColor(QColor(*map(int, (colors[i].astype(int) + colors[i + 1]) // 2)))
            painter.strokePath(path, pen)
    if uniform:
        painter.strokePath(path, pen)


class InkCanvas(QWidget):
    """Canvas that records strokes into an :class:`InkDocument` and shows overlays.

    Signals:
        strokeStarted: the pen went down.
        strokeFinished: a stroke was added to the document.
        strokeCancelled: the pen went up with nothing changed (Escape, or an eraser
            path that touched no stroke).
        documentChanged: strokes were added, erased, removed, undone, redone or loaded.
        boxClicked(int, int): a character box was right-clicked (or Ctrl+clicked).
    """

    boxClicked = Signal(int, int)
    strokeStarted = Signal()
    strokeFinished = Signal()
    strokeCancelled = Signal()
    documentChanged = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.doc = InkDocument()
        self.view = View()
        self._home = View()  # the fitted view: its top left is the page's, its scale zoom 1
        self.show_guides = True
        self._points: list[tuple[float, float, float, Optional[float]]] = []
        self._source: Optional[str] = None  # "mouse" | "tablet" | "touch" while a stroke is open
        self.erasing = False          # eraser mode: strokes written remove what they touch
        self._erase_stroke = False    # the open stroke is an eraser path
        self._ev_offset = 0.0
        self._last_end_ev: Optional[float] = None
        self._pan_from: Optional[QPointF] = None  # where a hand-tool drag last was
        self._space = False  # Space held: the pen or left button drags the page
        self._pan_button = Qt.NoButton  # the mouse button of a drag
        self._gesture: Optional[tuple[QPointF, float]] = None  # two fingers: (centre, spread)
        self._cache: Optional[QPixmap] = None
        self._cache_key: tuple = ()
        self.boxes: list[CharBox] = []
        self.selected: Optional[tuple[int, int]] = None
        self.heat: Optional[np.ndarray] = None  # (N,) levels in [0, 1] over the page's points
        self.setAttribute(Qt.WA_AcceptTouchEvents, True)
        self.setAttribute(Qt.WA_OpaquePaintEvent, True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setCursor(Qt.CrossCursor)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(320, 240)

    def sizeHint(self) -> QSize:
        return QSize(860, 600)

    # ------------------------------------------------------------ documents
    def set_document(self, doc: InkDocument, fit: bool = True) -> None:
        """Show ``doc``; fit the view to its ink (identity for an empty page)."""
        self.doc = doc
        self._points = []
        self._source = None
        self._last_end_ev = None
        self.clear_overlays()
        if fit:
            self.fit_view()
        self._changed()

    def fit_view(self, margin: float = 24.0) -> None:
        """Show loaded ink whole, its lines on the guide lines.

        Ink that already lies inside the canvas keeps identity mapping (it
        was written here). Other ink is put at the top left on a page where
        each of its text lines is about as tall as a guide line (zoom 1), so
        the guides and new writing line up with it; when that page is larger
        than the canvas (many lines, a long line), the view is zoomed out to
        show it whole (down to MIN_ZOOM), the guides zoomed with the ink.
        """
        ink = self.doc.to_ink()
        self.view = self._home = View()
        if not ink.is_empty:
            x0, y0, x1, y1 = ink.bbox()
            if not (x0 >= 0 and y0 >= 0 and x1 <= self.width() and y1 <= self.height()):
                ys = ink.to_array()[:, 1]
                mids = [float(np.median(ys[line.points])) for line in group_lines(ink)]  # top to bottom
                s = 0.8 * LINE_SPACING * len(mids) / max(y1 - y0, 1e-9)  # a text line a guide line tall
                pitch = float(np.median(np.diff(mids))) if len(mids) > 1 else 0.0
                if pitch > 0:  # lines as far apart as the guides
                    s = min(LINE_SPACING / pitch, 2 * s)
                # the first line's middle between its guides, and its top on the page
                dy = max(0.65 * LINE_SPACING - s * mids[0], 0.1 * LINE_SPACING - s * y0)
                self._home = View(s, margin - s * x0, dy)
                w, h = max(self.width() - 2 * margin, 50), max(self.height() - margin, 50)
                z = min(1.0, max(MIN_ZOOM, min(w / (s * max(x1 - x0, 1e-9)), h / (s * y1 + dy))))
                self.view = View(s * z, self._home.dx * z, self._home.dy * z)
        self._cache = None
        self.update()

    @property
    def zoom(self) -> float:
        """The view's scale relative to the fitted view (1 after :meth:`fit_view`)."""
        return self.view.scale / self._home.scale

    def set_view(self, scale: float, dx: float, dy: float) -> None:
        """Show the page at ``scale`` with offsets ``dx, dy``, never left of or above the page.

        The page's top left corner is that of the fitted view; the ink keeps its
        coordinates, only the view moves (with the guide lines).
        """
        z = scale / self._home.scale
        view = View(scale, min(dx, self._home.dx * z), min(dy, self._home.dy * z))
        if view != self.view:
            self.view = view
            self._cache = None
            self.update()

    def scroll_by(self, pixels: float, horizontal: float = 0.0) -> None:
        """Move the view down the page by ``pixels`` (up when negative) and right by ``horizontal``."""
        self.set_view(self.view.scale, self.view.dx - horizontal, self.view.dy - pixels)

    def zoom_by(self, factor: float, center: Optional[QPointF] = None) -> None:
        """Zoom by ``factor`` (within MIN_ZOOM..MAX_ZOOM), keeping the ink under ``center`` in place."""
        if self._points:
            return  # not while a stroke is being written
        z = min(max(self.zoom * factor, MIN_ZOOM), MAX_ZOOM)
        f = z * self._home.scale / self.view.scale
        c = center if center is not None else QPointF(self.width() / 2, self.height() / 2)
        self.set_view(self.view.scale * f, c.x() - (c.x() - self.view.dx) * f,
                      c.y() - (c.y() - self.view.dy) * f)

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1 / ZOOM_STEP)

    def undo(self) -> bool:
        return self._edit(self.doc.undo)

    def redo(self) -> bool:
        return self._edit(self.doc.redo)

    def clear(self) -> bool:
        return self._edit(self.doc.clear)

    def _edit(self, op) -> bool:
        if self._points:
            self.cancel_stroke()
        done = op()
        if done:
            self._changed()
        return done

    def _changed(self) -> None:
        self.clear_overlays()
        self.update()
        self.documentChanged.emit()

    # -------------------------------------------------------------- overlays
    def set_boxes(self, boxes: Sequence[CharBox]) -> None:
        self.boxes = list(boxes)
        if self.selected is not None and all(b.key != self.selected for b in self.boxes):
            self.selected = None
        self.update()

    def set_selected(self, key: Optional[tuple[int, int]]) -> None:
        self.selected = key
        self.update()

    def set_heat(self, levels: Optional[np.ndarray]) -> None:
        """Per-point heat in [0, 1] over the page's flat points, or None to remove it."""
        if levels is not None and len(levels) != self.doc.num_points:
            log.warning("heat has %d values for %d points; ignored", len(levels), self.doc.num_points)
            levels = None
        self.heat = None if levels is None else np.asarray(levels, dtype=np.float64)
        self._cache = None
        self.update()

    def clear_overlays(self) -> None:
        self.boxes, self.selected, self.heat = [], None, None
        self._cache = None

    def box_at(self, pos: QPointF, reach: float = 10.0) -> Optional[CharBox]:
        """The box under a widget position (the smallest, when boxes nest), else the nearest
        within ``reach`` pixels: a character's box holds the ink its frames came from, which
        may leave part of the letter (the bowl of an a) just outside it."""
        x, y = self.view.to_ink(pos)
        hits = [b for b in self.boxes if b.rect[0] <= x <= b.rect[2] and b.rect[1] <= y <= b.rect[3]]
        if hits:
            return min(hits, key=lambda b: (b.rect[2] - b.rect[0]) * (b.rect[3] - b.rect[1]))

        def gap(b: CharBox) -> float:  # widget pixels from the position to the box
            dx = max(b.rect[0] - x, 0.0, x - b.rect[2])
            dy = max(b.rect[1] - y, 0.0, y - b.rect[3])
            return float(np.hypot(dx, dy)) * self.view.scale
        near = min(self.boxes, key=gap, default=None)
        return near if near is not None and gap(near) <= reach else None

    # ----------------------------------------------------------------- input
    def _event_seconds(self, timestamp_ms: int) -> float:
        # Synthetic events may carry no timestamp; fall back to the wall clock.
        return timestamp_ms / 1000.0 if timestamp_ms > 0 else time.perf_counter()

    def set_erasing(self, on: bool) -> None:
        """Eraser mode on or off (the cursor shows which)."""
        self.erasing = bool(on)
        if self._pan_from is None:
            self._restore_cursor()

    def _begin(self, source: str, pos: QPointF, ev_t: float, pressure: Optional[float],
               erase: bool = False) -> None:
        self._erase_stroke = erase or self.erasing
        last = self.doc.last_time()
        if last is None:
            self._ev_offset = -ev_t
        else:
            gap = GAP_AFTER_LOAD
            if self._last_end_ev is not None and ev_t >= self._last_end_ev:
                gap = ev_t - self._last_end_ev
            self._ev_offset = last + gap - ev_t
        self._source = source
        self._points = []
        self._add(pos, ev_t, pressure)
        self.strokeStarted.emit()

    def _add(self, pos: QPointF, ev_t: float, pressure: Optional[float]) -> None:
        x, y = self.view.to_ink(pos)
        t = ev_t + self._ev_offset
        if self._points:
            px, py, pt, _ = self._points[-1]
            t = max(t, pt)
            if px == x and py == y:
                return
        self._points.append((x, y, t, pressure))
        self.update()

    def _end(self, pos: QPointF, ev_t: float, pressure: Optional[float]) -> None:
        self._add(pos, ev_t, pressure)
        if self._erase_stroke:
            self._erase_along()
            return
        pts = np.array([p[:3] for p in self._points], dtype=np.float64)
        press = [p[3] for p in self._points]
        pressure_arr = None if any(p is None for p in press) else np.array(press, dtype=np.float64)
        stroke = Stroke(pts[:, 0], pts[:, 1], pts[:, 2], pressure_arr)
        self._points, self._source = [], None
        self._last_end_ev = ev_t
        fresh = self._cache is not None and self._cache_key == self._key() and self.heat is None
        self.doc.add_stroke(stroke)
        self.heat = None  # heat covers the old points only; boxes stay valid
        if fresh:
            self._draw_into_cache(stroke)
        else:
            self._cache = None
        self.update()
        self.strokeFinished.emit()
        self.documentChanged.emit()

    def _erase_along(self) -> None:
        """The eraser path ended: remove the strokes it touched (one undoable edit)."""
        path = np.array([p[:2] for p in self._points], dtype=np.float64)
        self._points, self._source, self._erase_stroke = [], None, False
        radius = ERASER_RADIUS / max(self.view.scale, 1e-9)
        ids = self.doc.strokes_near(path[:, 0], path[:, 1], radius)
        if not (ids and self._edit(lambda: self.doc.erase(ids))):
            self.update()
            self.strokeCancelled.emit()

    def cancel_stroke(self) -> None:
        """Drop the stroke being written (Escape, or an edit in the middle of it)."""
        self._points, self._source, self._erase_stroke = [], None, False
        self.update()
        self.strokeCancelled.emit()

    # ------------------------------------------------------------ hand tool
    def _pan_begin(self, pos: QPointF) -> None:
        self._pan_from = QPointF(pos)
        self.setCursor(Qt.ClosedHandCursor)

    def _pan_move(self, pos: QPointF) -> None:
        """Drag the page with the pointer (never past its top or left edge)."""
        if self._pan_from is None:
            return
        d = pos - self._pan_from
        self._pan_from = QPointF(pos)
        self.set_view(self.view.scale, self.view.dx + d.x(), self.view.dy + d.y())

    def _pan_end(self, pos: Optional[QPointF] = None) -> None:
        if pos is not None:
            self._pan_move(pos)
        self._pan_from = None
        self._restore_cursor()

    def _restore_cursor(self) -> None:
        if self._space:
            self.setCursor(Qt.OpenHandCursor)
        else:
            self.setCursor(Qt.PointingHandCursor if self.erasing else Qt.CrossCursor)

    @property
    def panning(self) -> bool:
        """A hand-tool drag (middle button, or Space held) is moving the page."""
        return self._pan_from is not None

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        if self._source is None and self._pan_from is None and (
                ev.button() == Qt.MiddleButton or (ev.button() == Qt.LeftButton and self._space)):
            self._pan_begin(ev.position())
            self._pan_button = ev.button()
            return
        if self._pan_from is not None:
            return  # another button during a drag
        picking = ev.button() == Qt.RightButton or (
            ev.button() == Qt.LeftButton and ev.modifiers() & Qt.ControlModifier)
        if picking and self._source is None:
            box = self.box_at(ev.position())
            if box is not None:
                self.boxClicked.emit(*box.key)
            return
        if ev.button() != Qt.LeftButton or self._source is not None:
            return
        self._begin("mouse", ev.position(), self._event_seconds(ev.timestamp()), None)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_move(ev.position())
            return
        if self._source == "mouse" and ev.buttons() & Qt.LeftButton:
            self._add(ev.position(), self._event_seconds(ev.timestamp()), None)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        if self._pan_from is not None and ev.button() == self._pan_button:
            self._pan_end(ev.position())
            return
        if self._source == "mouse" and ev.button() == Qt.LeftButton:
            self._end(ev.position(), self._event_seconds(ev.timestamp()), None)

    def tabletEvent(self, ev: QTabletEvent) -> None:
        t, kind = self._event_seconds(ev.timestamp()), ev.type()
        p = float(ev.pressure())
        if self._pan_from is not None or (
                kind == QEvent.TabletPress and self._space and self._source is None):
            {QEvent.TabletPress: self._pan_begin, QEvent.TabletMove: self._pan_move}.get(
                kind, self._pan_end)(ev.position())
            ev.accept()
            return
        if kind == QEvent.TabletPress and self._source is None:
            eraser = ev.pointerType() == QPointingDevice.PointerType.Eraser
            self._begin("tablet", ev.position(), t, p, erase=eraser)
        elif kind == QEvent.TabletMove and self._source == "tablet":
            self._add(ev.position(), t, p)
        elif kind == QEvent.TabletRelease and self._source == "tablet":
            # Release reports pressure 0; keep the last real pressure for the end point.
            self._end(ev.position(), t, self._points[-1][3] if self._points else p)
        ev.accept()  # accepted tablet events are not turned into mouse events

    def event(self, ev: QEvent) -> bool:
        kind = ev.type()
        if kind in (QEvent.TouchBegin, QEvent.TouchUpdate, QEvent.TouchEnd, QEvent.TouchCancel):
            self._touch(ev)
            return True
        return super().event(ev)

    def _touch(self, ev: QTouchEvent) -> None:
        ev.accept()
        if ev.type() == QEvent.TouchCancel or not ev.points():
            if self._source == "touch":
                self.cancel_stroke()
            self._gesture = None
            return
        down = [pt.position() for pt in ev.points() if pt.state() != QEventPoint.State.Released]
        if len(down) >= 2 or self._gesture is not None:
            self._two_fingers(down)
            return
        pt, t = ev.points()[0], self._event_seconds(ev.timestamp())
        has_pressure = bool(ev.device() and ev.device().capabilities() & QInputDevice.Capability.Pressure)
        p = float(pt.pressure()) if has_pressure else None
        if ev.type() == QEvent.TouchBegin and self._source is None:
            self._begin("touch", pt.position(), t, p)
        elif ev.type() == QEvent.TouchUpdate and self._source == "touch":
            self._add(pt.position(), t, p)
        elif ev.type() == QEvent.TouchEnd and self._source == "touch":
            self._end(pt.position(), t, p)

    def _two_fingers(self, down: list[QPointF]) -> None:
        """Two fingers move the page and pinch-zoom it; the first finger's stroke is dropped.

        Writing resumes once every finger has left the screen.
        """
        if self._source == "touch":
            self.cancel_stroke()
        if len(down) < 2:
            if not down:
                self._gesture = None  # all fingers up
            elif self._gesture is not None:
                self._gesture = (self._gesture[0], 0.0)  # one left: wait, no zoom on return
            return
        a, b = down[0], down[1]
        center = (a + b) / 2
        dist = float(np.hypot(a.x() - b.x(), a.y() - b.y()))
        if self._gesture is not None and self._gesture[1] > 0:
            before, d0 = self._gesture
            shift = center - before
            self.set_view(self.view.scale, self.view.dx + shift.x(), self.view.dy + shift.y())
            if dist > 0:
                self.zoom_by(dist / d0, center)
        self._gesture = (QPointF(center), dist)

    def wheelEvent(self, ev) -> None:
        """Scroll the page (half a guide line a wheel step), never above its top or left of it.

        The wheel scrolls down and up; with Shift, or a horizontal wheel, sideways; with
        Ctrl it zooms about the pointer. The ink keeps its coordinates; only the view
        moves, with the guide lines, so a page can hold more and longer lines than the
        window shows.
        """
        if self._points:
            return  # not while a stroke is being written
        step = LINE_SPACING * self.zoom / 2
        delta = ev.angleDelta()
        sx, sy = delta.x() / 120.0, delta.y() / 120.0
        if not (sx or sy) and not ev.pixelDelta().isNull():
            sx, sy = ev.pixelDelta().x() / step, ev.pixelDelta().y() / step
        if ev.modifiers() & Qt.ControlModifier:
            self.zoom_by(ZOOM_STEP ** (sy or sx), ev.position())
        elif ev.modifiers() & Qt.ShiftModifier:
            self.scroll_by(0.0, -(sx or sy) * step)
        else:
            self.scroll_by(-sy * step, -sx * step)
        ev.accept()

    def keyPressEvent(self, ev) -> None:
        if ev.key() == Qt.Key_Space:
            if not ev.isAutoRepeat() and not self._space:
                self._space = True  # the hand tool while Space is held
                if self._pan_from is None:
                    self._restore_cursor()
            return
        if ev.key() == Qt.Key_Escape and self._points:
            self.cancel_stroke()
            return
        if ev.key() in (Qt.Key_PageDown, Qt.Key_PageUp) and not self._points:
            spacing = LINE_SPACING * self.zoom
            page = max(spacing, (self.height() // spacing - 1) * spacing)
            self.scroll_by(page if ev.key() == Qt.Key_PageDown else -page)
            return
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev) -> None:
        if ev.key() == Qt.Key_Space and not ev.isAutoRepeat():
            self._space = False
            if self._pan_from is None:
                self._restore_cursor()
            return
        super().keyReleaseEvent(ev)

    def focusOutEvent(self, ev) -> None:
        self._space = False  # its release goes elsewhere
        if self._pan_from is None:
            self._restore_cursor()
        super().focusOutEvent(ev)

    # -------------------------------------------------------------- painting
    def resizeEvent(self, ev) -> None:
        self._cache = None
        super().resizeEvent(ev)

    def _stroke_pixels(self, s: Stroke) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, y = self.view.to_widget(s.x, s.y)
        return x, y, pen_widths(s.pressure, len(s), self.zoom)

    def _draw_into_cache(self, stroke: Stroke) -> None:
        painter = QPainter(self._cache)
        painter.setRenderHint(QPainter.Antialiasing)
        draw_polyline(painter, *self._stroke_pixels(stroke))
        painter.end()
        self._cache_key = self._key()

    def _key(self) -> tuple:
        return (self.doc.revision, id(self.doc), self.width(), self.height(),
                self.view.scale, self.view.dx, self.view.dy, self.show_guides)

    def _render_cache(self) -> QPixmap:
        dpr = self.devicePixelRatioF()
        pix = QPixmap(int(self.width() * dpr), int(self.height() * dpr))
        pix.setDevicePixelRatio(dpr)
        pix.fill(QColor(255, 255, 253))
        painter = QPainter(pix)
        painter.setRenderHint(QPainter.Antialiasing)
        if self.show_guides:
            self._draw_guides(painter)
        self.draw_strokes(painter)
        painter.end()
        return pix

    def draw_strokes(self, painter: QPainter) -> None:
        """Draw every finished stroke, coloured by the heat overlay when there is one."""
        offsets = self.doc.point_offsets()
        grey = QColor(150, 150, 150) if self.heat is not None else QColor(20, 20, 30)
        for k, s in enumerate(self.doc.strokes):
            x, y, w = self._stroke_pixels(s)
            if self.heat is None:
                draw_polyline(painter, x, y, w, color=grey)
            else:
                levels = self.heat[offsets[k]:offsets[k + 1]]
                draw_polyline(painter, x, y, w * (1.0 + 1.5 * levels), colors=heat_rgb(levels))

    def _draw_guides(self, painter: QPainter) -> None:
        """Baseline and x-height guides every LINE_SPACING of the fitted view, zoomed with the ink."""
        base = QPen(QColor(120, 160, 220, 150), 1.0)
        mid = QPen(QColor(120, 160, 220, 70), 1.0, Qt.DashLine)
        z, w = self.zoom, self.width()
        spacing = LINE_SPACING * z
        first = LINE_SPACING * 0.8 * z + self.view.dy - self._home.dy * z  # the page's first baseline
        y = first + np.floor(-first / spacing) * spacing  # the last baseline above the top
        while y - LINE_SPACING * 0.3 * z < self.height():
            painter.setPen(mid)  # x-height guide
            painter.drawLine(QPointF(0, y - LINE_SPACING * 0.3 * z), QPointF(w, y - LINE_SPACING * 0.3 * z))
            painter.setPen(base)  # baseline
            painter.drawLine(QPointF(0, y), QPointF(w, y))
            y += spacing

    def paintEvent(self, ev: QPaintEvent) -> None:
        if self._cache is None or self._cache_key != self._key():
            self._cache = self._render_cache()
            self._cache_key = self._key()
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._cache)
        painter.setRenderHint(QPainter.Antialiasing)
        self._draw_boxes(painter)
        if self._points:
            pts = np.array([p[:3] for p in self._points])
            press = [p[3] for p in self._points]
            pr = None if any(p is None for p in press) else np.array(press)
            x, y = self.view.to_widget(pts[:, 0], pts[:, 1])
            if self._erase_stroke:  # the eraser's path: a broad translucent trail
                draw_polyline(painter, x, y, np.full(len(pts), 2 * ERASER_RADIUS),
                              color=QColor(220, 60, 60, 70))
            else:
                draw_polyline(painter, x, y, pen_widths(pr, len(pts), self.zoom))
        painter.end()

    def _draw_boxes(self, painter: QPainter) -> None:
        if not self.boxes:
            return
        font = QFont(self.font())
        font.setPointSizeF(8.0)
        painter.setFont(font)
        for i, b in enumerate(self.boxes):
            x0, y0 = self.view.to_widget(np.array(b.rect[0]), np.array(b.rect[1]))
            x1, y1 = self.view.to_widget(np.array(b.rect[2]), np.array(b.rect[3]))
            rect = QRectF(float(x0) - 2, float(y0) - 2, float(x1 - x0) + 4, float(y1 - y0) + 4)
            color = QColor(*PALETTE[i % len(PALETTE)])
            chosen = b.key == self.selected
            color.setAlpha(255 if chosen else 150)
            painter.setPen(QPen(color, 2.5 if chosen else 1.0))
            fill = QColor(color)
            fill.setAlpha(40 if chosen else 0)
            painter.setBrush(fill)
            painter.drawRect(rect)
            painter.drawText(rect.topLeft() + QPointF(1, -2), b.char)
        painter.setBrush(Qt.NoBrush)

    def render_image(self, with_overlays: bool = True) -> QPixmap:
        """The canvas as it looks now (for PNG export of the view)."""
        return self.grab() if with_overlays else self._render_cache()
