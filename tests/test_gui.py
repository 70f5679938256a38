"""The desktop app under pytest-qt, offscreen: drawing, live recognition, saliency, files."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="the GUI tests need PySide6")
pytest.importorskip("pytestqt", reason="the GUI tests need pytest-qt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QKeySequence  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from inkread.formats import read_ink, write_ink  # noqa: E402
from inkread.gui import explain  # noqa: E402
from inkread.gui.mainwindow import MainWindow  # noqa: E402
from inkread.ink import Ink, Stroke  # noqa: E402


class FakeRecognizer:
    """Stands in for inkread.recognizer.Recognizer: one letter per stroke, spans = the stroke."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def recognize(self, ink: Ink, nbest: int = 5, **kwargs):
        self.calls += 1
        time.sleep(self.delay)
        offsets = np.cumsum([0] + [len(s) for s in ink.strokes])
        text = "".join("abcdefghij"[i % 10] for i in range(len(ink.strokes)))
        chars = [SimpleNamespace(char=c, index=i, frame_start=i, frame_end=i,
                                 point_indices=np.arange(offsets[i], offsets[i + 1]))
                 for i, c in enumerate(text)]
        return SimpleNamespace(text=text, nbest=[(text, -1.0), (text.upper(), -2.5)][:nbest],
                               chars=chars, ms={"features": 0.1, "network": 0.5, "decode": 0.1})


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Factory of main windows with private settings and autosave dir; dialogs answered."""
    made = []

    def make(autosave: Path = tmp_path / "autosave", recognizer=None) -> MainWindow:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
        w = MainWindow(settings=settings, autosave_dir=autosave, load_model=False)
        w.errors = []
        w.show_error = lambda title, msg: w.errors.append(msg)
        w.infos = []
        w.show_info = lambda title, msg: w.infos.append(msg)
        w.confirm_discard = lambda: True
        w.questions = []
        w.ask_text = lambda title, label, text: None
        w.ask_yes_no = lambda title, question: w.questions.append(question) and False
        w.controller.timer.setInterval(5)  # debounce: keep the tests fast
        qtbot.addWidget(w)
        with qtbot.waitExposed(w):
            w.show()
        if recognizer is not None:
            w.controller.set_recognizer(recognizer, "fake")
        made.append(w)
        return w

    yield make
    for w in made:
        w.controller.shutdown()


def draw(canvas, points, step_ms: int = 8) -> None:
    """Press, move through ``points`` and release, as a mouse user writes."""
    pts = [QPoint(int(x), int(y)) for x, y in points]
    QTest.mousePress(canvas, Qt.LeftButton, Qt.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(canvas, p, step_ms)
    QTest.mouseRelease(canvas, Qt.LeftButton, Qt.NoModifier, pts[-1], step_ms)


def squiggle(x0: float, y0: float, n: int = 10) -> list[tuple[float, float]]:
    return [(x0 + 3 * k, y0 - 12 * abs(np.sin(k / 3))) for k in range(n)]


def wait_text(qtbot, w: MainWindow, text: str) -> None:
    qtbot.waitUntil(lambda: w.results.text.text() == text, timeout=5000)


# ------------------------------------------------------------------ drawing

def test_mouse_strokes_are_recorded(make_window):
    w = make_window()
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, [(100, 90), (110, 80), (120, 85)])
    ink = w.canvas.doc.to_ink()
    assert [len(s) for s in ink.strokes] == [10, 3]
    np.testing.assert_allclose(ink.strokes[1].x, [100, 110, 120])
    np.testing.assert_allclose(ink.strokes[1].y, [90, 80, 85])
    t = ink.to_array()[:, 2]
    assert np.all(np.diff(t) >= 0) and t[-1] > t[0]  # one time axis, in seconds
    assert ink.strokes[0].pressure is None  # a mouse has none


def test_undo_redo_clear_with_shortcuts(make_window):
    w = make_window()
    for k in range(3):
        draw(w.canvas, squiggle(40 + 50 * k, 90))
    # keySequence delivers the keys as a shortcut of the window, as a keyboard would
    QTest.keySequence(w, QKeySequence("Ctrl+Z"))
    assert len(w.canvas.doc) == 2
    QTest.keySequence(w, QKeySequence("Ctrl+Shift+Z"))
    assert len(w.canvas.doc) == 3
    QTest.keySequence(w, QKeySequence(Qt.Key_Delete))
    assert len(w.canvas.doc) == 0
    QTest.keySequence(w, QKeySequence("Ctrl+Z"))
    assert len(w.canvas.doc) == 3
    QTest.keySequence(w, QKeySequence("Ctrl+Y"))
    assert len(w.canvas.doc) == 0  # Ctrl+Y redoes the clear


def test_eraser_removes_the_strokes_it_touches_and_undo_brings_them_back(qtbot, make_window):
    fake = FakeRecognizer()
    w = make_window(recognizer=fake)
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    draw(w.canvas, squiggle(140, 90))
    wait_text(qtbot, w, "abc")
    ids = list(w.canvas.doc.ids)
    w.act_eraser.trigger()
    assert w.canvas.erasing and w.act_eraser.isChecked()
    draw(w.canvas, [(100, 60), (100, 70), (100, 95), (100, 110)])  # down through the middle stroke
    assert w.canvas.doc.ids == [ids[0], ids[2]]
    wait_text(qtbot, w, "ab")  # recognised again without it
    draw(w.canvas, [(300, 300), (310, 310)])  # touches nothing: nothing changes, nothing is added
    assert w.canvas.doc.ids == [ids[0], ids[2]] and not w.canvas._points
    w.act_eraser.trigger()
    assert not w.canvas.erasing
    draw(w.canvas, squiggle(40, 210, 6))  # writing again
    w.act_eraser.trigger()
    draw(w.canvas, [(200, 300)])  # a tap on nothing while the new stroke's recognition is pending
    wait_text(qtbot, w, "ab\na")  # the held recognition still runs
    w.act_eraser.trigger()
    assert w.canvas.undo() and w.canvas.undo() and w.canvas.doc.ids == ids
    wait_text(qtbot, w, "abc")


def _wheel(widget, notches: float, modifiers=Qt.NoModifier, pos=(200, 200), horizontal: float = 0) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    pos = QPointF(*pos)
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0),
                     QPoint(int(120 * horizontal), int(120 * notches)),
                     Qt.NoButton, modifiers, Qt.NoScrollPhase, False)
    widget.wheelEvent(ev)


def test_wheel_scrolls_the_page_down_for_more_lines_and_not_above_its_top(qtbot, make_window):
    from inkread.gui.canvas import LINE_SPACING
    w = make_window(recognizer=FakeRecognizer())
    c = w.canvas
    draw(c, squiggle(40, 90))
    _wheel(c, -4)  # four steps down: two guide lines
    assert c.view.dy == -2 * LINE_SPACING
    draw(c, squiggle(200, 90))  # written on the window's first guide, now the page's third
    ys = [float(s.y.max()) for s in c.doc.strokes]
    assert ys[1] - ys[0] == pytest.approx(2 * LINE_SPACING)
    wait_text(qtbot, w, "a\na")  # two lines, far apart

    def darkest(x0, x1, y0, y1):
        img = c.grab().toImage()
        return min(img.pixelColor(x, y).value() for x in range(x0, x1) for y in range(y0, y1))
    assert darkest(40, 70, 70, 95) > 200 and darkest(200, 230, 70, 95) < 100  # the first is out of sight
    _wheel(c, 10)  # back up, and no further than the top
    assert c.view.dy == 0.0
    assert darkest(40, 70, 70, 95) < 100 and darkest(200, 230, 70, 95) > 200
    QTest.keyClick(c, Qt.Key_PageDown)  # a window's worth of guide lines, less one
    assert c.view.dy == -(c.height() // LINE_SPACING - 1) * LINE_SPACING < 0
    QTest.keyClick(c, Qt.Key_PageUp)
    QTest.keyClick(c, Qt.Key_PageUp)
    assert c.view.dy == 0.0
    _wheel(c, -3)
    c.fit_view()
    assert c.view.dy == 0.0


def test_zoom_keeps_the_ink_under_the_pointer_and_the_guides_with_the_ink(qtbot, make_window):
    from inkread.gui.canvas import LINE_SPACING, MAX_ZOOM, MIN_ZOOM
    w = make_window(recognizer=FakeRecognizer())
    c = w.canvas
    draw(c, squiggle(40, 90))

    def ink_at(x, y):
        return c.view.to_ink(QPointF(x, y))
    before = ink_at(300, 150)
    _wheel(c, 2, Qt.ControlModifier, pos=(300, 150))  # two notches in, about the pointer
    assert c.zoom == pytest.approx(1.25 ** 2)
    assert ink_at(300, 150) == pytest.approx(before)
    # a stroke written now is stored in page units: a third guide line's squiggle is a
    # smaller one, on the page's first line as the guides show it
    baseline_widget = LINE_SPACING * 0.8 * c.zoom + c.view.dy
    assert ink_at(0, baseline_widget)[1] == pytest.approx(LINE_SPACING * 0.8)
    draw(c, squiggle(300, baseline_widget))
    s0, s1 = c.doc.strokes
    assert float(np.ptp(s1.y)) == pytest.approx(float(np.ptp(s0.y)) / c.zoom, rel=0.1)
    assert float(s1.y.max()) == pytest.approx(LINE_SPACING * 0.8, abs=1)
    wait_text(qtbot, w, "ab")  # one line
    img = c.grab().toImage()  # the guide is drawn where the page's baseline now is
    y, x = int(round(baseline_widget)), c.width() - 5
    reds = [img.pixelColor(x, y + d).red() for d in (-1, 0, 1)]
    assert min(reds) < 200 < img.pixelColor(x, y - 20).red()  # a guide here, none between
    for _ in range(20):
        w.act_zoom_in.trigger()
    assert c.zoom == pytest.approx(MAX_ZOOM)
    for _ in range(40):
        w.act_zoom_out.trigger()
    assert c.zoom == pytest.approx(MIN_ZOOM)
    assert c.view.dx <= 0 and c.view.dy <= 0  # never left of or above the page
    w.act_fit.trigger()
    assert c.zoom == 1.0 and (c.view.dx, c.view.dy) == (0.0, 0.0)


def _page(n_lines: int, width: float = 5000.0, pitch: float = 1000.0) -> Ink:
    """A page in a device's units (far outside the canvas): ``n_lines`` lines of three words."""
    strokes = []
    for k in range(n_lines):
        for w0 in (0.0, 0.4 * width, 0.75 * width):
            x = np.linspace(w0, w0 + 0.2 * width, 40)
            y = k * pitch + 300 * np.abs(np.sin(x / 150.0))
            strokes.append(Stroke(x, y, 0.01 * np.arange(40) + k * 10 + w0 / width))
    return Ink(strokes)


@pytest.mark.parametrize("n_lines", [2, 15])
def test_opened_ink_lies_on_the_guides_and_fits_the_window(make_window, tmp_path, n_lines):
    """A page opened from a file is shown whole, with a margin, and with its lines on the guide
    lines (their pitch zoomed as the ink is), so that new writing on a free guide does not land on
    other lines; Ctrl+0 shows it the same way again."""
    from inkread.gui.canvas import LINE_SPACING
    w = make_window()
    c = w.canvas
    path = tmp_path / "page.json"
    write_ink(_page(n_lines), path)
    assert w.open_file(path)
    for step in ("open", "fit"):
        x, y = c.view.to_widget(np.array([0.0, 5000.0]), np.array([0.0, 1000.0 * (n_lines - 1) + 300]))
        assert 5 <= x[0] and x[1] <= c.width() and 5 <= y[0] and y[1] <= c.height(), (step, x, y)
        pitch = 1000.0 * c.view.scale  # one line to the next, on screen
        assert pitch == pytest.approx(LINE_SPACING * c.zoom, rel=0.1), step
        assert c.zoom <= 1.0 and (c.zoom < 1.0) == (n_lines == 15)
        c.zoom_by(2.0)
        w.act_fit.trigger()  # the action's `checked` argument must not become the margin


def test_shift_wheel_scrolls_sideways_for_long_lines_and_not_left_of_the_page(make_window):
    from inkread.gui.canvas import LINE_SPACING
    w = make_window(recognizer=FakeRecognizer())
    c = w.canvas
    _wheel(c, -4, Qt.ShiftModifier)  # four steps right: two guide spacings
    assert (c.view.dx, c.view.dy) == (-2 * LINE_SPACING, 0.0)
    draw(c, squiggle(40, 90))
    assert float(c.doc.strokes[0].x.min()) == pytest.approx(40 + 2 * LINE_SPACING)
    _wheel(c, 0, horizontal=-2)  # a horizontal wheel scrolls sideways too
    assert c.view.dx == -3 * LINE_SPACING
    _wheel(c, 10, Qt.ShiftModifier)  # back, and no further than the page's left edge
    assert c.view.dx == 0.0


def _drag(canvas, button, points) -> None:
    pts = [QPoint(int(x), int(y)) for x, y in points]
    QTest.mousePress(canvas, button, Qt.NoModifier, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(canvas, p, 8)
    QTest.mouseRelease(canvas, button, Qt.NoModifier, pts[-1], 8)


def test_middle_drag_and_space_drag_move_the_page_and_write_nothing(make_window):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent
    w = make_window(recognizer=FakeRecognizer())
    c = w.canvas
    draw(c, squiggle(300, 300))
    _drag(c, Qt.MiddleButton, [(300, 300), (280, 260), (250, 220)])  # grab the page, pull it up-left
    assert (c.view.dx, c.view.dy) == (-50.0, -80.0) and len(c.doc) == 1 and not c.panning
    draw(c, squiggle(40, 90))  # written where the page now shows
    assert float(c.doc.strokes[1].x.min()) == pytest.approx(90) and float(c.doc.strokes[1].y.max()) > 160
    QTest.keyPress(c, Qt.Key_Space)  # Space held: the left button drags the page too
    assert c.cursor().shape() == Qt.OpenHandCursor
    _drag(c, Qt.LeftButton, [(100, 100), (120, 130)])
    assert (c.view.dx, c.view.dy) == (-30.0, -50.0) and len(c.doc) == 2
    dev = QPointingDevice("pen", 3, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                          QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)
    for kind, (x, y) in [(QEvent.TabletPress, (100, 100)), (QEvent.TabletMove, (90, 95)),
                         (QEvent.TabletRelease, (80, 90))]:  # and the pen
        pos = QPointF(x, y)
        buttons = Qt.LeftButton if kind != QEvent.TabletRelease else Qt.NoButton
        c.tabletEvent(QTabletEvent(kind, dev, pos, c.mapToGlobal(pos), 0.5, 0, 0, 0, 0, 0, Qt.NoModifier,
                                   Qt.LeftButton, buttons))
    assert (c.view.dx, c.view.dy) == (-50.0, -60.0) and len(c.doc) == 2
    QTest.keyRelease(c, Qt.Key_Space)
    assert c.cursor().shape() == Qt.CrossCursor
    _drag(c, Qt.MiddleButton, [(100, 100), (400, 400)])  # no further than the page's top left
    assert (c.view.dx, c.view.dy) == (0.0, 0.0)
    draw(c, squiggle(40, 300))  # without Space the left button writes again
    assert len(c.doc) == 3 and float(c.doc.strokes[2].x.min()) == pytest.approx(40)


def test_tablet_eraser_end_erases_without_eraser_mode(make_window):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent
    w = make_window()
    c = w.canvas
    draw(c, squiggle(40, 90))
    draw(c, squiggle(90, 90))
    dev = QPointingDevice("pen", 2, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Eraser,
                          QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)
    for kind, y in [(QEvent.TabletPress, 60), (QEvent.TabletMove, 85), (QEvent.TabletRelease, 110)]:
        pos = QPointF(45, y)
        ev = QTabletEvent(kind, dev, pos, c.mapToGlobal(pos), 0.5, 0, 0, 0, 0, 0, Qt.NoModifier,
                          Qt.LeftButton, Qt.LeftButton if kind != QEvent.TabletRelease else Qt.NoButton)
        c.tabletEvent(ev)
    assert not c.erasing and len(c.doc) == 1 and c.doc.strokes[0].x[0] == 90


def test_tablet_pressure_and_touch(make_window):
    from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent
    from PySide6.QtCore import QEvent
    w = make_window()
    c = w.canvas
    dev = QPointingDevice("pen", 1, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                          QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)
    for kind, x, p in [(QEvent.TabletPress, 50, 0.2), (QEvent.TabletMove, 60, 0.6),
                       (QEvent.TabletMove, 70, 0.9), (QEvent.TabletRelease, 70, 0.0)]:
        pos = QPointF(x, 90)
        ev = QTabletEvent(kind, dev, pos, c.mapToGlobal(pos), p, 0, 0, 0, 0, 0, Qt.NoModifier,
                          Qt.LeftButton, Qt.LeftButton if kind != QEvent.TabletRelease else Qt.NoButton)
        c.tabletEvent(ev)
    stroke = c.doc.strokes[-1]
    np.testing.assert_allclose(stroke.pressure, [0.2, 0.6, 0.9])  # release keeps the last pressure
    touch = QTest.createTouchDevice()
    QTest.touchEvent(c, touch).press(0, QPoint(100, 200)).commit()
    QTest.touchEvent(c, touch).move(0, QPoint(120, 190)).commit()
    QTest.touchEvent(c, touch).release(0, QPoint(130, 185)).commit()
    assert len(c.doc) == 2 and len(c.doc.strokes[-1]) >= 2


def test_two_fingers_move_and_pinch_zoom_the_page_and_write_nothing(make_window):
    w = make_window(recognizer=FakeRecognizer())
    c = w.canvas
    touch = QTest.createTouchDevice()
    QTest.touchEvent(c, touch).press(0, QPoint(300, 300)).commit()  # a stroke begins...
    QTest.touchEvent(c, touch).move(0, QPoint(302, 300)).press(1, QPoint(400, 300)).commit()
    assert c._source is None  # ...and is dropped when a second finger lands
    QTest.touchEvent(c, touch).move(0, QPoint(272, 260)).move(1, QPoint(370, 260)).commit()  # both up-left
    assert (c.view.dx, c.view.dy) == (-30.0, -40.0) and c.zoom == 1.0
    centre = QPointF(c._gesture[0])  # as the canvas saw it (QTest's touch points may sit a pixel or two off)
    before = c.view.to_ink(centre)
    QTest.touchEvent(c, touch).move(0, QPoint(223, 260)).move(1, QPoint(419, 260)).commit()  # spread x2
    assert c.zoom == pytest.approx(2.0)
    assert c._gesture[0] == centre and c.view.to_ink(centre) == pytest.approx(before)  # about the centre
    QTest.touchEvent(c, touch).release(0, QPoint(223, 260)).move(1, QPoint(500, 500)).commit()
    view = c.view  # one finger left: it neither writes nor moves the page
    QTest.touchEvent(c, touch).release(1, QPoint(500, 500)).commit()
    assert c.view == view and len(c.doc) == 0
    QTest.touchEvent(c, touch).press(0, QPoint(100, 200)).commit()  # then one finger writes again
    QTest.touchEvent(c, touch).move(0, QPoint(120, 190)).commit()
    QTest.touchEvent(c, touch).release(0, QPoint(130, 185)).commit()
    assert len(c.doc) == 1


def test_strokes_are_drawn_antialiased_with_pressure_width(make_window):
    from inkread.gui.canvas import pen_widths
    assert np.ptp(pen_widths(None, 5)) == 0  # mouse: constant width
    w = pen_widths(np.array([0.0, 0.5, 1.0]), 3)
    assert w[0] < w[1] < w[2]
    win = make_window()
    draw(win.canvas, [(40 + 4 * k, 90 + 2 * k) for k in range(30)])
    img = win.canvas.grab().toImage()
    greys = {img.pixelColor(x, y).value() for x in range(35, 170) for y in range(80, 160)}
    assert min(greys) < 60  # ink
    assert any(80 < g < 230 for g in greys)  # soft edges: antialiased


# -------------------------------------------------------------- recognition

def test_live_recognition_shows_text_boxes_and_time(qtbot, make_window):
    w = make_window(recognizer=FakeRecognizer())
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    wait_text(qtbot, w, "ab")
    assert [b.char for b in w.canvas.boxes] == ["a", "b"]
    first = w.canvas.doc.strokes[0]
    assert w.canvas.boxes[0].rect == pytest.approx((first.x.min(), first.y.min(),
                                                    first.x.max(), first.y.max()))
    assert "Recognised in" in w.results.timing.text() and "ms" in w.results.timing.text()
    assert w.results.nbest.count() == 2


def test_several_lines_keep_their_breaks(qtbot, make_window):
    fake = FakeRecognizer()
    w = make_window(recognizer=fake)
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    draw(w.canvas, squiggle(40, 210))  # the next guide line
    wait_text(qtbot, w, "ab\na")
    calls = fake.calls
    draw(w.canvas, squiggle(90, 210))
    wait_text(qtbot, w, "ab\nab")
    assert fake.calls == calls + 1  # the unchanged first line came from the cache


def test_stale_results_are_dropped(qtbot, make_window):
    w = make_window(recognizer=FakeRecognizer(delay=0.3))
    draw(w.canvas, squiggle(40, 90))
    w.controller.request_now()  # starts a slow recognition of one stroke
    draw(w.canvas, squiggle(90, 90))  # the ink changes while it runs
    wait_text(qtbot, w, "ab")
    assert w.controller.dropped >= 1


def test_no_model_keeps_the_editor_working(qtbot, make_window):
    w = make_window()
    w.controller.modelFailed.emit("models/default.pt: no such model file")
    draw(w.canvas, squiggle(40, 90))
    assert len(w.canvas.doc) == 1 and "No model" in w.model_label.text()
    assert "still write" in w.results.text.placeholder


def test_choosing_an_alternative(qtbot, make_window):
    w = make_window(recognizer=FakeRecognizer())
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    wait_text(qtbot, w, "ab")
    item = w.results.nbest.item(1)
    rect = w.results.nbest.visualItemRect(item)
    QTest.mouseClick(w.results.nbest.viewport(), Qt.LeftButton, Qt.NoModifier, rect.center())
    assert w.results.text.text() == "AB"
    assert w.canvas.boxes == []  # spans belong to the best hypothesis only


# ----------------------------------------------------------------- saliency

def test_clicking_a_character_shows_its_heat(qtbot, make_window, monkeypatch):
    def fake_heat(rec, ink, char, method, *args):
        offsets = np.cumsum([0] + [len(s) for s in ink.strokes])
        scores = np.zeros(ink.num_points)
        scores[offsets[char]:offsets[char + 1]] = 1.0  # the character's own stroke drove it
        return scores
    monkeypatch.setattr(explain, "unavailable", lambda: None)
    monkeypatch.setattr(explain, "char_heat", fake_heat)
    w = make_window(recognizer=FakeRecognizer())
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    wait_text(qtbot, w, "ab")
    view = w.results.text
    QTest.mouseClick(view, Qt.LeftButton, Qt.NoModifier, view.char_rect(0, 1).center().toPoint())
    qtbot.waitUntil(lambda: w.canvas.heat is not None, timeout=5000)
    assert w.canvas.selected == (0, 1)
    np.testing.assert_array_equal(w.canvas.heat > 0.5, [False] * 10 + [True] * 10)
    before = w.canvas.grab().toImage()
    w.clear_heat()
    assert w.canvas.heat is None and before.width() > 0
    # on the canvas: a right-click in a character's box, or a few pixels outside it (the box holds
    # the ink of the character's frames, which may leave part of the letter out); not far away
    c = w.canvas
    box = next(b for b in c.boxes if b.key == (0, 0))
    (x0, x1), (y0, y1) = c.view.to_widget(np.array(box.rect[0::2]), np.array(box.rect[1::2]))
    for at, picked in [((x0 + 1, (y0 + y1) / 2), (0, 0)), ((x0 - 6, (y0 + y1) / 2), (0, 0)),
                       ((x0 - 40, y1 + 40), None)]:
        c.set_selected(None)
        QTest.mouseClick(c, Qt.RightButton, Qt.NoModifier, QPoint(int(at[0]), int(at[1])))
        assert c.selected == picked, (at, picked)
    assert len(c.doc) == 2  # a pick writes nothing
    qtbot.waitUntil(lambda: w.canvas.heat is not None, timeout=5000)
    w.results.show_line(0)
    w.ask_text = lambda title, label, text: "xy"
    assert w.correct_line()  # typed text is not what the network read: no heat, and none left over
    QTest.mouseClick(view, Qt.LeftButton, Qt.NoModifier, view.char_rect(0, 1).center().toPoint())
    assert w.canvas.heat is None and "best hypothesis" in w.saliency.status.text()


def test_saliency_missing_is_said_plainly(qtbot, make_window, monkeypatch):
    monkeypatch.setattr(explain, "unavailable", lambda: "saliency not available (test)")
    w = make_window(recognizer=FakeRecognizer())
    draw(w.canvas, squiggle(40, 90))
    wait_text(qtbot, w, "a")
    w.select_char(0, 0)
    assert "not available" in w.saliency.status.text() and w.canvas.heat is None


def test_demo_panel_replays_and_exports(qtbot, make_window, monkeypatch, tmp_path):
    def rows(rec, ink):
        T = 12
        return explain.DemoRows(ink, np.random.default_rng(0).random((T, 3)), ["", "a", "b"],
                                np.sin(np.arange(T * 8).reshape(T, 8)),
                                np.linspace(0, ink.num_points - 1, T), np.linspace(0, 1, ink.num_points))
    monkeypatch.setattr(explain, "demo_unavailable", lambda: None)
    monkeypatch.setattr(explain, "demo_rows", rows)
    w = make_window(recognizer=FakeRecognizer())
    draw(w.canvas, squiggle(40, 90))
    wait_text(qtbot, w, "a")
    w.act_demo.trigger()
    w.demo.replay()
    qtbot.waitUntil(lambda: w.demo.view.rows is not None, timeout=5000)
    assert w.demo.view.frame is not None or not w.demo.timer.isActive()
    out = tmp_path / "demo.png"
    w.ask_save_path = lambda title, filters: str(out)
    assert w.export_demo() and out.stat().st_size > 0


def test_export_view_png(qtbot, make_window, tmp_path):
    w = make_window()
    draw(w.canvas, squiggle(40, 90))
    out = tmp_path / "view.png"
    w.ask_save_path = lambda title, filters: str(out)
    assert w.export_view() and out.read_bytes()[:4] == b"\x89PNG"


# -------------------------------------------------------------------- files

@pytest.mark.parametrize("suffix", [".json", ".inkml"])
def test_save_and_open_round_trip(make_window, tmp_path, suffix):
    w = make_window()
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90, 6))
    out = tmp_path / f"page{suffix}"
    w.ask_save_path = lambda title, filters: str(out)
    assert w.save() and not w.canvas.doc.modified
    w2 = make_window()
    assert w2.open_file(out)
    a, b = w.canvas.doc.to_ink().to_array(), w2.canvas.doc.to_ink().to_array()
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert str(out) in w2.recent_files()
    assert not w2.autosaver.timer.isActive()  # an unmodified page is not autosaved


def test_save_lines_writes_one_labelled_file_per_line_for_fine_tuning(qtbot, make_window, tmp_path):
    from inkread.datasets import load_spec
    from inkread.formats import read_ink
    w = make_window()
    w.ask_folder = lambda title: str(tmp_path / "mine")
    draw(w.canvas, squiggle(40, 90))
    assert w.save_lines() == 0 and len(w.errors) == 1 and "wait for the text" in w.errors[0]
    w.controller.set_recognizer(FakeRecognizer(), "fake")
    draw(w.canvas, squiggle(90, 90))
    draw(w.canvas, squiggle(40, 210, 6))  # the next guide line
    wait_text(qtbot, w, "ab\na")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "other.json").write_text("{not ink")  # not ours: left alone
    assert w.save_lines() == 2 and len(w.errors) == 1
    assert w.save_lines() == 2  # again: both are there already, so nothing new is written
    assert "(2 already there)" in w.statusBar().currentMessage()
    files = sorted((tmp_path / "mine").glob("line-*.json"))
    assert len(files) == 2 and (tmp_path / "mine" / "other.json").read_text() == "{not ink"
    inks = [read_ink(f) for f in files]
    assert [i.text for i in inks] == ["ab", "a"]
    assert [len(i.strokes) for i in inks] == [2, 1]
    page = w.canvas.doc.to_ink()
    np.testing.assert_allclose(inks[1].strokes[0].x, page.strokes[2].x, atol=1e-3)
    assert len(load_spec(f"native:{tmp_path / 'mine'}")) == 2  # what `inkread finetune` reads
    w.results.result.lines[0].chosen = 1  # an alternative chosen: its text is the label
    assert w.save_lines() == 2  # the first line is new (new text), the second is there
    assert sorted(read_ink(f).text for f in (tmp_path / "mine").glob("line-*.json")) == ["AB", "a", "ab"]

def test_fine_tune_trains_on_saved_lines_in_the_background_and_switches_to_the_result(
        qtbot, make_window, tmp_path, monkeypatch):
    from inkread.checkpoint import load
    from recog_helpers import save_tiny_model, write_native_dir
    w = make_window(recognizer=FakeRecognizer())
    base = save_tiny_model(tmp_path / "base.pt")
    w.settings.setValue("model/path", str(base))
    empty = tmp_path / "empty"
    empty.mkdir()
    w.ask_folder = lambda title: str(empty)
    assert w.fine_tune()
    qtbot.waitUntil(lambda: bool(w.errors), timeout=120000)
    assert "no line to fine-tune on" in w.errors[0] and w.settings.value("model/path") == str(base)
    assert w.act_finetune.text() == "&Fine-tune on my writing..."
    lines = write_native_dir(tmp_path / "mine")
    w.ask_folder = lambda title: str(lines)
    assert w.fine_tune()
    assert w.act_finetune.text() == "Stop &fine-tuning" and "fine-tuning" in w.busy_label.text()
    draw(w.canvas, squiggle(40, 90))  # the canvas stays live meanwhile
    qtbot.waitUntil(lambda: not w.tuner.running and "now using" in w.statusBar().currentMessage(),
                    timeout=180000)
    assert "Fine-tuned on 6 lines" in w.statusBar().currentMessage() and len(w.errors) == 1
    assert len(w.infos) == 1 and "Greedy errors on them" in w.infos[0] and "Fewer than" not in w.infos[0]
    qtbot.waitUntil(lambda: w.model_label.text().startswith("Model: ") and "mine-" in w.model_label.text(),
                    timeout=120000)  # now the model in use
    path = Path(w.settings.value("model/path"))  # remembered once it loaded
    assert path.parent == w.models_dir and path.name.startswith("mine-") and path.name in w.model_label.text()
    assert load(path).meta["fine_tune"]["from"] == str(base.resolve())
    assert w.act_finetune.text() == "&Fine-tune on my writing..." and "fine-tun" not in w.busy_label.text()
    assert len(w.canvas.doc) == 1
    assert w.fine_tune()  # again, with the fine-tuned model in use: it starts from base.pt again
    qtbot.waitUntil(lambda: len(w.infos) == 2, timeout=180000)
    assert w.infos[1].startswith("Fine-tuned base.pt on 6 lines") and "stopped" not in w.infos[1]
    qtbot.waitUntil(lambda: Path(w.settings.value("model/path")) != path, timeout=120000)
    from inkread import finetune as ft
    real = ft.fine_tune  # a fine-tune long enough to stop by hand
    monkeypatch.setattr(ft, "fine_tune", lambda *a, **k: real(*a, **{**k, "epochs": 100000}))
    assert w.fine_tune()
    def steps_shown() -> int:  # the progress label's step (it moves on fast: any step from 3 on)
        import re
        m = re.search(r"step (\d+) of", w.busy_label.text())
        return int(m.group(1)) if m else 0
    qtbot.waitUntil(lambda: steps_shown() >= 3, timeout=120000)
    assert w.act_finetune.text() == "Stop &fine-tuning"
    assert not w.fine_tune()  # the same action stops it; the model so far is kept and used
    qtbot.waitUntil(lambda: len(w.infos) == 3, timeout=120000)
    assert "(stopped after" in w.infos[2] and w.act_finetune.text() == "&Fine-tune on my writing..."


def test_correct_line_types_the_label_that_saving_lines_uses(qtbot, make_window, tmp_path):
    from inkread.formats import read_ink
    w = make_window()
    w.ask_text = lambda title, label, text: "never asked"
    assert not w.correct_line() and "wait for the text" in w.errors[-1]
    w.controller.set_recognizer(FakeRecognizer(), "fake")
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    draw(w.canvas, squiggle(40, 210, 6))  # the next guide line
    wait_text(qtbot, w, "ab\na")
    w.results.show_line(0)
    asked = []
    w.ask_text = lambda title, label, text: asked.append((title, text)) or "  cd   d "
    assert w.correct_line()
    assert asked == [("Correct line 1", "ab")]
    assert w.results.text.text() == "cd d\na"
    assert w.results.nbest.item(2).text() == "cd d    (typed)" and w.results.nbest.item(2).font().bold()
    assert [b.key[0] for b in w.canvas.boxes] == [1]  # the typed line has no character boxes
    w.ask_text = lambda title, label, text: "dd"  # typing again replaces the typed entry
    assert w.correct_line() and w.results.nbest.count() == 3 and w.results.text.text() == "dd\na"
    w.ask_text = lambda title, label, text: "AB"  # a recognised alternative is chosen, not typed
    assert w.correct_line() and w.results.result.lines[0].chosen == 1
    w.ask_text = lambda title, label, text: "cab"
    assert w.correct_line()
    draw(w.canvas, squiggle(90, 210))  # line 2 grows; line 1 keeps its typed text
    wait_text(qtbot, w, "cab\nab")
    w.ask_text = lambda title, label, text: "   "  # nothing typed: nothing changes
    assert not w.correct_line()
    first = w.results.result.lines[0]
    w.act_lm.toggle()  # decoding changes: every line is recognised again, the typed text stays
    qtbot.waitUntil(lambda: w.results.result.lines[0] is not first, timeout=5000)
    assert w.results.text.text() == "cab\nab" and w.results.result.lines[0].chosen == 2
    w.ask_folder = lambda title: str(tmp_path)
    assert w.save_lines() == 2
    assert sorted(read_ink(f).text for f in tmp_path.glob("*.json")) == ["ab", "cab"]


def test_typed_text_is_unsaved_work_and_comes_back_with_the_file_and_after_a_crash(qtbot, make_window, tmp_path):
    """A typed correction marks the page unsaved (title *, the discard question, autosave); a
    saved page keeps it (metadata typed_lines) and opening the file, or recovering the
    autosave, shows it again instead of the recognised text."""
    from inkread.formats import read_ink
    auto = tmp_path / "auto"
    w = make_window(autosave=auto, recognizer=FakeRecognizer())
    w.autosaver.timer.setInterval(20)
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    draw(w.canvas, squiggle(40, 210, 6))  # the next guide line
    wait_text(qtbot, w, "ab\na")
    path = tmp_path / "page.json"
    w.ask_save_path = lambda title, filters: str(path)
    assert w.save() and not w.unsaved() and "*" not in w.windowTitle()
    w.results.show_line(0)
    w.choose_alternative(0, w.results.result.lines[0].chosen)  # the one already in use: no change
    assert not w.unsaved()
    w.ask_text = lambda title, label, text: "hello"
    assert w.correct_line()
    assert w.unsaved() and "page.json* - inkread" == w.windowTitle()
    qtbot.waitUntil(lambda: (auto / "autosave.json").is_file(), timeout=3000)
    assert w.save() and not w.unsaved()
    saved = read_ink(path)
    assert saved.text == "hello\na" and saved.metadata["typed_lines"] == [{"strokes": [0, 1], "text": "hello"}]
    assert w.save() and read_ink(path).text == "hello\na"  # saving again keeps it
    w2 = make_window(recognizer=FakeRecognizer())
    assert w2.open_file(path)
    wait_text(qtbot, w2, "hello\na")
    assert not w2.unsaved()
    w2.results.show_line(0)
    assert w2.results.nbest.count() == 3 and "(typed)" in w2.results.nbest.item(2).text()
    # after a crash: the autosave of an unsaved correction brings it back
    w.ask_text = lambda title, label, text: "world"
    assert w.correct_line() and w.unsaved()
    qtbot.waitUntil(lambda: (auto / "autosave.json").is_file(), timeout=3000)
    w3 = make_window(autosave=auto, recognizer=FakeRecognizer())
    w3.ask_recover = lambda ink: True
    assert w3.offer_recovery()
    wait_text(qtbot, w3, "world\na")
    # entries that do not fit the page are left out, not raised
    bad = saved.replace(metadata={"typed_lines": [{"strokes": [0, 99], "text": "x"}, "junk",
                                                  {"strokes": [2], "text": ["y"]}, {"text": "z"}]})
    write_ink(bad, tmp_path / "bad.json")
    assert w2.open_file(tmp_path / "bad.json")
    wait_text(qtbot, w2, "ab\na")


def test_fine_tune_offers_to_save_and_train_on_the_page_being_written(qtbot, make_window, tmp_path):
    from inkread.formats import read_ink
    from recog_helpers import save_tiny_model
    w = make_window(recognizer=FakeRecognizer())
    w.settings.setValue("model/path", str(save_tiny_model(tmp_path / "base.pt")))
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    draw(w.canvas, squiggle(40, 210, 6))  # the next guide line
    wait_text(qtbot, w, "ab\na")
    folder = tmp_path / "mine"
    folder.mkdir()
    w.ask_folder = lambda title: str(folder)
    w.ask_yes_no = lambda title, question: w.questions.append(question) or True
    assert w.fine_tune()
    assert w.questions == [f"Also save this page's 2 recognised lines into {folder} and train on them too?"]
    assert sorted(read_ink(f).text for f in folder.glob("*.json")) == ["a", "ab"]
    qtbot.waitUntil(lambda: not w.tuner.running and "now using" in w.statusBar().currentMessage(),
                    timeout=60000)
    assert "Fine-tuned on 2 lines" in w.statusBar().currentMessage() and not w.errors
    assert "Fine-tuned base.pt on 2 lines" in w.infos[0] and "Fewer than 4 lines" in w.infos[0]


def test_export_image_png_and_svg(make_window, tmp_path):
    pytest.importorskip("inkread.render")
    w = make_window()
    draw(w.canvas, squiggle(40, 90))
    for name in ("ink.png", "ink.svg"):
        w.ask_save_path = lambda title, filters, name=name: str(tmp_path / name)
        assert w.export_image(), w.errors
    assert (tmp_path / "ink.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (tmp_path / "ink.svg").read_text()


def test_bad_file_gives_one_line_error(make_window, tmp_path):
    w = make_window()
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": "inkread", "version": 1, "strokes": [{"x": [1, "a"]}]}')
    assert not w.open_file(bad)
    assert len(w.errors) == 1 and "\n" not in w.errors[0] and "broken.json" in w.errors[0]
    assert not w.open_file(tmp_path / "missing.json")
    assert "no such file" in w.errors[-1]


def test_dropping_a_file_opens_it(qtbot, make_window, tmp_path):
    path = tmp_path / "dropped.json"
    write_ink(Ink([Stroke([0, 10, 20], [0, 5, 0], [0, 0.01, 0.02])]), path)
    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(100, 100), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    w.dropEvent(ev)
    qtbot.waitUntil(lambda: len(w.canvas.doc) == 1, timeout=3000)
    assert w.path == path


def test_autosave_recovers_after_a_crash(qtbot, make_window, tmp_path):
    auto = tmp_path / "auto"
    w = make_window(autosave=auto)
    w.autosaver.timer.setInterval(20)
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    qtbot.waitUntil(lambda: (auto / "autosave.json").is_file(), timeout=3000)
    saved = json.loads((auto / "autosave.json").read_text())
    assert saved.get("format") == "inkread"
    # "crash": the first window never closes; a new session finds the file
    w2 = make_window(autosave=auto)
    w2.ask_recover = lambda ink: True
    assert w2.offer_recovery()
    np.testing.assert_allclose(w2.canvas.doc.to_ink().to_array(), w.canvas.doc.to_ink().to_array(),
                               atol=1e-3)
    assert w2.canvas.doc.modified  # recovered ink still needs saving
    w3 = make_window(autosave=tmp_path / "elsewhere")
    assert not w3.offer_recovery()


def test_settings_remember_model_and_recent(make_window, tmp_path):
    w = make_window()
    w.controller.load_model = lambda path: None  # no real loading here
    w.set_model_path(str(tmp_path / "m.pt"))
    w.controller.modelLoaded.emit(str(tmp_path / "m.pt"))  # kept once it loads
    path = tmp_path / "a.json"
    write_ink(Ink([Stroke([0, 1], [0, 1], [0, 0.1])]), path)
    w.open_file(path)
    w2 = make_window()
    assert w2.settings.value("model/path") == str(tmp_path / "m.pt")
    assert w2.recent_files()[0] == str(path)
    assert w2.recent_menu.actions()[0].toolTip() == str(path)


def test_shortcuts_are_listed(make_window):
    table = dict((name, keys) for keys, name in make_window().shortcut_table())
    assert table["Undo"] == "Ctrl+Z" and "Ctrl+Shift+Z" in table["Redo"] and table["Eraser"] == "E"
    assert table["Open..."] == "Ctrl+O" and table["Save"] == "Ctrl+S"
    assert table["Export PNG/SVG..."] == "Ctrl+E" and table["Clear page"] == "Del"


def test_layout_fits_1280x800(make_window):
    w = make_window()
    w.resize(1280, 800)
    assert w.width() <= 1280 and w.height() <= 800
    assert w.canvas.width() >= 700 and w.canvas.height() >= 500


def test_a_long_page_scrolls_in_the_text_panel_instead_of_growing_the_window(qtbot, make_window, tmp_path):
    """30 recognised lines (and the demo panel open) leave the window at 1280x800: the text
    scrolls, showing the line last written, and the panel's controls stay on screen."""
    w = make_window(recognizer=FakeRecognizer())
    w.resize(1280, 800)
    path = tmp_path / "page.json"
    write_ink(_page(30), path)
    assert w.open_file(path)
    qtbot.waitUntil(lambda: len(w.results.text.lines) == 30, timeout=10000)
    w.act_demo.trigger()  # the demo panel takes height from the window too
    qtbot.wait(50)
    assert w.minimumSizeHint().height() <= 800 and w.width() <= 1280 and w.height() <= 800
    assert w.results.scroll.verticalScrollBar().maximum() > 0  # it scrolls
    assert w.results.nbest.isVisible() and w.results.nbest.height() > 20
    bottom = w.results.timing.mapTo(w, w.results.timing.rect().bottomLeft()).y()
    assert bottom <= w.height()
    w.results.show_line(29)
    w.results._show_current_line()
    bar = w.results.scroll.verticalScrollBar()
    assert bar.value() == bar.maximum()  # the last line is in view


def test_tiny_real_model_recognises_live(qtbot, make_window, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("inkread.recognizer", reason="the recognizer is not built yet")
    from inkread.alphabet import Alphabet
    from inkread.checkpoint import save
    from inkread.features import FeatureConfig
    from inkread.model import InkModel, ModelConfig
    torch.manual_seed(0)
    alphabet = Alphabet(" abc")
    cfg = ModelConfig(input_size=FeatureConfig().num_features, num_classes=len(alphabet),
                      hidden_size=8, num_layers=1, dropout=0.0, conv_channels=8, subsample=2)
    path = tmp_path / "tiny.pt"
    save(path, InkModel(cfg), alphabet, FeatureConfig())
    w = make_window()
    with qtbot.waitSignal(w.controller.modelLoaded, timeout=20000):
        w.load_model(str(path))
    assert "tiny.pt" in w.model_label.text()
    draw(w.canvas, squiggle(40, 90, 30))
    draw(w.canvas, squiggle(140, 90, 30))
    qtbot.waitUntil(lambda: w.results.result is not None and bool(w.results.result.lines)
                    and w.results.result.revision == w.canvas.doc.revision, timeout=20000)
    res = w.results.result
    assert w.results.text.text() == res.lines[0].text
    assert set(res.lines[0].text) <= set(" abc")
    n_boxed = sum(1 for c, _, pts in res.lines[0].chars if len(pts) and not c.isspace())
    assert len(w.canvas.boxes) == n_boxed
    for box in w.canvas.boxes:  # every box lies on the ink
        x0, y0, x1, y1 = box.rect
        assert 40 <= x0 <= x1 <= 230 and 0 <= y0 <= y1 <= 90


def test_missing_model_file_is_reported(qtbot, make_window, tmp_path):
    pytest.importorskip("inkread.recognizer", reason="the recognizer is not built yet")
    w = make_window()
    with qtbot.waitSignal(w.controller.modelFailed, timeout=20000) as sig:
        w.load_model(str(tmp_path / "none.pt"))
    assert "none.pt" in sig.args[0] and "No model" in w.model_label.text()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_qt_binding_keeps_none_alive(qapp):
    # PySide6 6.12.0 dropped a reference to None on every void call: the app aborted
    # ("none_dealloc") after a few thousand repaints. The app warns about it at start.
    from PySide6.QtWidgets import QWidget
    from inkread.gui.app import binding_problem
    w = QWidget()
    before = sys.getrefcount(None)
    for _ in range(200):
        w.update()
    assert sys.getrefcount(None) >= before or binding_problem()


def test_cli_rejects_missing_model(capsys, tmp_path):
    from inkread.cli import main
    assert main(["gui", "--model", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.pt" in err and "Traceback" not in err


def test_a_model_that_fails_to_load_leaves_the_model_in_use_and_the_setting(make_window, tmp_path):
    w = make_window(recognizer=FakeRecognizer())
    rec = w.controller.recognizer
    w.settings.setValue("model/path", "")
    w.controller.load_model = lambda path: w.controller.modelFailed.emit(f"{path}: damaged or cut short")
    w.set_model_path(str(tmp_path / "bad.pt"))
    assert w.controller.recognizer is rec and w.model_label.text() == "Model: fake"
    assert w.settings.value("model/path") == "" and "bad.pt: damaged" in w.errors[-1]
    assert "still using fake" in w.errors[-1]


def test_starting_with_a_file_offers_the_crashed_page_first(qtbot, make_window, tmp_path):
    from inkread.gui.app import begin
    auto = tmp_path / "auto"
    path = tmp_path / "page.json"
    write_ink(Ink([Stroke([0, 10, 20], [0, 5, 0], [0, 0.01, 0.02])]), path)
    w = make_window(autosave=auto)
    w.open_file(path)
    draw(w.canvas, squiggle(40, 90))
    assert w.autosaver.save_now() and (auto / "autosave.json").is_file()
    # a crash; the next start names the file
    w2 = make_window(autosave=auto)
    asked = []
    w2.ask_recover = lambda ink: asked.append(len(ink)) or False
    begin(w2, str(path))
    assert asked == [2] and w2.path == path and len(w2.canvas.doc) == 1
    # accepted, the recovered page keeps the file it came from, so Save writes there
    w.autosaver.save_now()
    w3 = make_window(autosave=auto)
    w3.ask_recover = lambda ink: True
    assert w3.offer_recovery() and w3.path == path and len(w3.canvas.doc) == 2
    assert "autosaved_from" not in w3.ink_to_save().metadata
    assert w3.save() and len(read_ink(path).strokes) == 2


def test_recent_files_are_absolute(make_window, tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    write_ink(Ink([Stroke([0, 1], [0, 1], [0, 0.1])]), tmp_path / "sub" / "a.json")
    monkeypatch.chdir(tmp_path / "sub")
    w = make_window()
    assert w.open_file("a.json")
    assert w.recent_files()[0] == str(tmp_path / "sub" / "a.json") and w.path == tmp_path / "sub" / "a.json"


def test_an_explanation_is_not_left_beside_other_ink(qtbot, make_window):
    w = make_window(recognizer=FakeRecognizer())
    w.saliency.set_status("Gradient for 'a': brighter, thicker ink drove this character more.")
    draw(w.canvas, squiggle(40, 90))
    assert w.saliency.status.text() == w.saliency.HINT
    w.saliency.set_status("Gradient for 'a': ...")
    w.clear_heat()
    assert w.saliency.status.text() == w.saliency.HINT


def test_clicking_beside_a_rows_text_makes_it_the_current_line(qtbot, make_window):
    w = make_window(recognizer=FakeRecognizer())
    draw(w.canvas, squiggle(40, 90))
    draw(w.canvas, squiggle(90, 90))
    draw(w.canvas, squiggle(40, 210, 6))  # the next guide line
    wait_text(qtbot, w, "ab\na")
    w.results.show_line(0)
    view = w.results.text
    beside = view.char_rect(1, 0).adjusted(0, 0, 200, 0).center().toPoint()  # right of line 2's "a"
    QTest.mouseClick(view, Qt.LeftButton, Qt.NoModifier, beside)
    assert w.results.current_line == 1 and w.canvas.selected is None
