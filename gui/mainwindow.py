"""The main window: canvas, recognised text, saliency, files and settings.

Layout (fits 1280x800): the canvas fills the left; a side panel on the
right holds the recognised text, the n-best list, timings and the saliency
controls; the demo panel (Graves's rows) is a dock at the bottom, hidden
until asked for. Every dialog goes through a small ``ask_*``/``show_error``
method so tests can answer it without a modal loop.
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QGroupBox, QInputDialog, QLabel, QLineEdit,
                               QMainWindow, QMessageBox, QSplitter, QVBoxLayout, QWidget)

from inkread.errors import InkreadError
from inkread.formats import formats, read_ink, write_ink
from inkread.ink import Ink

from . import explain
from .autosave import Autosaver, default_dir
from .canvas import CharBox, InkCanvas
from .colors import normalise
from .document import InkDocument
from .finetune import FineTuner
from inkread.lines import line_ink
from .recognition import PageResult, RecognitionController
from .results import ResultPanel, has_box
from .saliency_view import DemoPanel, SaliencyPanel

log = logging.getLogger(__name__)

MAX_RECENT = 8
TYPED_LINES = "typed_lines"  # the saved page's metadata key for typed line texts
AUTOSAVED_FROM = "autosaved_from"  # the autosave's metadata key for the file the page was opened from
SAVE_FILTERS = {"Native ink (*.json)": ".json", "InkML (*.inkml)": ".inkml"}
EXPORT_FILTERS = {"PNG image (*.png)": ".png", "SVG image (*.svg)": ".svg"}


def open_filter() -> str:
    """File-dialog filter listing every readable ink format."""
    table = formats()
    every = " ".join(f"*{s}" for f in table.values() for s in f.suffixes)
    each = [f"{f.name} ({' '.join('*' + s for s in f.suffixes)})" for f in table.values()]
    return ";;".join([f"Ink files ({every})"] + each + ["All files (*)"])


class MainWindow(QMainWindow):
    """The inkread desktop app.

    Args:
        settings: where preferences live (default: the user's inkread settings).
        autosave_dir: directory of the autosave file (default: AppDataLocation).
        model: model file to load, overriding the saved preference; None uses
            the preference, else the default model.
        load_model: start loading the model now (tests pass False and set a
            recogniser themselves).
    """

    def __init__(self, settings: Optional[QSettings] = None, autosave_dir: Optional[Path] = None,
                 model: Optional[str] = None, load_model: bool = True) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings("inkread", "inkread")
        self.path: Optional[Path] = None
        self.last_error: Optional[str] = None
        self.closing = False
        self.corrections: dict[tuple, str] = {}  # typed text per line (its strokes' ids)
        self.text_changed = False  # a line's text was typed or chosen since the page was saved or opened
        self.heat_request: Optional[tuple] = None
        self._model_choice: Optional[str] = None  # a model asked for, kept in the settings once it loads
        self._model_name = ""  # the model in use (its path, or "default model")
        self.setWindowTitle("inkread")
        self.setAcceptDrops(True)
        self._build_widgets()
        self.controller = RecognitionController(lambda: self.canvas.doc, self)
        self.autosaver = Autosaver(self._ink_to_autosave, autosave_dir, parent=self)
        self.tuner = FineTuner(self)
        self.models_dir = (autosave_dir or default_dir()) / "models"  # where fine-tuned models go
        self._build_actions()
        self._build_menus()
        self._connect()
        self._restore_settings()
        self._update_state()
        if load_model:
            self.load_model(model or self.settings.value("model/path", None) or None)

    # ------------------------------------------------------------ construction
    def _build_widgets(self) -> None:
        self.canvas = InkCanvas(self)
        self.results = ResultPanel(self)
        self.saliency = SaliencyPanel(self)
        self.model_label = QLabel("Loading model...", self)
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        side = QWidget(self)
        box = QVBoxLayout(side)
        box.setContentsMargins(6, 6, 6, 6)
        box.addWidget(self.model_label)
        text_group = QGroupBox("Recognised text", side)
        QVBoxLayout(text_group).addWidget(self.results)
        sal_group = QGroupBox("Why this character?", side)
        QVBoxLayout(sal_group).addWidget(self.saliency)
        box.addWidget(text_group, 1)
        box.addWidget(sal_group)
        side.setMinimumWidth(300)
        split = QSplitter(Qt.Horizontal, self)
        split.addWidget(self.canvas)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([880, 380])
        self.splitter = split
        self.setCentralWidget(split)
        self.demo = DemoPanel(self)
        self.demo_dock = QDockWidget("Demo: outputs, memory cells, writing, gradient", self)
        self.demo_dock.setObjectName("demoDock")
        self.demo_dock.setWidget(self.demo)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.demo_dock)
        self.demo_dock.hide()
        self.busy_label = QLabel("", self)
        self.statusBar().addPermanentWidget(self.busy_label)

    def _action(self, text: str, slot, shortcut=None, tip: str = "", checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(k) for k in keys])
        act.setStatusTip(tip)
        act.setCheckable(checkable)
        (act.toggled if checkable else act.triggered).connect(slot)
        self.addAction(act)  # shortcuts work even when the menu bar is hidden
        return act

    def _build_actions(self) -> None:
        a = self._action
        self.act_new = a("&New page", self.new_page, QKeySequence.New, "Start an empty page")
        self.act_open = a("&Open...", lambda: self.open_file(), QKeySequence.Open, "Open an ink file")
        self.act_save = a("&Save", self.save, QKeySequence.Save, "Save as native JSON or InkML")
        self.act_save_as = a("Save &as...", self.save_as, QKeySequence("Ctrl+Shift+S"))
        self.act_export = a("&Export PNG/SVG...", self.export_image, QKeySequence("Ctrl+E"),
                            "Export the ink as an image")
        self.act_save_lines = a("Save &lines for fine-tuning...", self.save_lines, None,
                                "Save each recognised line as its own labelled file")
        self.act_export_view = a("Export &view as PNG...", self.export_view,
                                 QKeySequence("Ctrl+Shift+E"), "Save the canvas with its overlays")
        self.act_quit = a("&Quit", self.close, QKeySequence.Quit)
        self.act_undo = a("&Undo", self.canvas.undo, [QKeySequence.Undo])
        self.act_redo = a("&Redo", self.canvas.redo,
                          [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_clear = a("&Clear page", self.canvas.clear, QKeySequence(Qt.Key_Delete))
        self.act_eraser = a("&Eraser", self.canvas.set_erasing, QKeySequence("E"),
                            "Strokes you draw now erase the strokes they touch (a tablet pen's "
                            "eraser end always does)", checkable=True)
        self.act_copy = a("&Copy text", self.results.copy_text, QKeySequence.Copy)
        self.act_correct = a("C&orrect line text...", self.correct_line, QKeySequence("F2"),
                             "Type what the current line says (its label for fine-tuning)")
        self.act_recognize = a("&Recognise now", self.controller.request_now, QKeySequence("F5"))
        self.act_fit = a("&Fit ink to view", lambda: self.canvas.fit_view(), QKeySequence("Ctrl+0"),
                         "Show the whole ink, its lines on the guide lines (undoes zooming and scrolling)")
        self.act_zoom_in = a("Zoom &in", self.canvas.zoom_in, [QKeySequence.ZoomIn, QKeySequence("Ctrl+=")],
                             "Or Ctrl + mouse wheel; Shift + wheel scrolls sideways; "
                             "middle-button drag or Space + drag moves the page")
        self.act_zoom_out = a("Zoom &out", self.canvas.zoom_out, [QKeySequence.ZoomOut])
        self.act_guides = a("Writing &guide lines", self._set_guides, None, checkable=True)
        self.act_demo = a("&Demo panel", self.demo_dock.setVisible, QKeySequence("Ctrl+D"),
                          checkable=True)
        self.act_replay = a("Re&play the writing (demo)", self.replay_demo, QKeySequence("Ctrl+R"),
                            "Open the demo panel and replay the current line")
        self.act_model = a("Choose &model file...", self.choose_model, None)
        self.act_default_model = a("Use the &default model", lambda: self.set_model_path(None))
        self.act_lm = a("Use &language model", self._set_lm, None, checkable=True)
        self.act_finetune = a("&Fine-tune on my writing...", self.fine_tune, None,
                              "Train the current model on your saved lines (File > Save lines "
                              "for fine-tuning) and switch to the result")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        for act in (self.act_new, self.act_open):
            file.addAction(act)
        self.recent_menu = file.addMenu("Open &recent")
        for act in (self.act_save, self.act_save_as, self.act_save_lines, None, self.act_export,
                    self.act_export_view, None, self.act_quit):
            file.addSeparator() if act is None else file.addAction(act)
        edit = bar.addMenu("&Edit")
        for act in (self.act_undo, self.act_redo, self.act_eraser, self.act_clear, None, self.act_copy,
                    self.act_correct, self.act_recognize):
            edit.addSeparator() if act is None else edit.addAction(act)
        view = bar.addMenu("&View")
        for act in (self.act_zoom_in, self.act_zoom_out, self.act_fit, None, self.act_guides,
                    self.act_demo, self.act_replay):
            view.addSeparator() if act is None else view.addAction(act)
        settings = bar.addMenu("&Settings")
        for act in (self.act_model, self.act_default_model, self.act_lm, None, self.act_finetune):
            settings.addSeparator() if act is None else settings.addAction(act)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction("&Keyboard shortcuts", self.show_shortcuts)
        tools = self.addToolBar("Main")
        tools.setObjectName("mainToolbar")
        for act in (self.act_open, self.act_save, self.act_export, None, self.act_undo,
                    self.act_redo, self.act_eraser, self.act_clear, None, self.act_demo):
            tools.addSeparator() if act is None else tools.addAction(act)

    def _connect(self) -> None:
        c = self.controller
        self.canvas.strokeStarted.connect(c.hold)
        self.canvas.strokeCancelled.connect(c.schedule)  # what the held pen-down postponed
        self.canvas.documentChanged.connect(self._doc_changed)
        self.canvas.boxClicked.connect(self.select_char)
        c.resultReady.connect(self.show_result)
        c.failed.connect(lambda msg: self._status(f"Recognition failed: {msg}"))
        c.modelLoaded.connect(self._model_loaded)
        c.modelFailed.connect(self._model_failed)
        c.busyChanged.connect(lambda busy: self.busy_label.setText("recognising..." if busy else ""))
        c.explained.connect(self._explained)
        self.results.charClicked.connect(self.select_char)
        self.results.alternativeChosen.connect(self.choose_alternative)
        self.saliency.methodChanged.connect(self._method_changed)
        self.saliency.clearRequested.connect(self.clear_heat)
        self.saliency.exportRequested.connect(self.export_view)
        self.demo.computeRequested.connect(self.compute_demo)
        self.demo.exportRequested.connect(self.export_demo)
        self.demo_dock.visibilityChanged.connect(self.act_demo.setChecked)
        self.autosaver.failed.connect(lambda msg: self._status(f"Autosave failed: {msg}"))
        self.tuner.progress.connect(lambda done, total: self.busy_label.setText(
            f"fine-tuning: step {done} of {total}"))
        self.tuner.finished.connect(self._fine_tuned)
        self.tuner.failed.connect(self._fine_tune_failed)

    def shortcut_table(self) -> list[tuple[str, str]]:
        """(keys, action) for every action with a shortcut, in menu order."""
        rows = []
        for act in self.actions():
            keys = ", ".join(k.toString(QKeySequence.NativeText) for k in act.shortcuts())
            if keys:
                rows.append((keys, act.text().replace("&", "")))
        return rows

    def show_shortcuts(self) -> None:
        text = "\n".join(f"{keys}\t{name}" for keys, name in self.shortcut_table())
        QMessageBox.information(self, "Keyboard shortcuts",
                                text + "\n\nRight-click (or Ctrl+click) a character box on the "
                                "canvas to explain it.\nMouse wheel: scroll; Shift+wheel: sideways; "
                                "Ctrl+wheel: zoom.\nMiddle-button drag, or Space + drag with the "
                                "mouse or pen: move the page.\nTouch: one finger writes; two move the page and "
                                "pinch to zoom.")

    # --------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.act_guides.setChecked(_as_bool(s.value("canvas/guides", True)))
        self.canvas.show_guides = self.act_guides.isChecked()
        self.act_lm.setChecked(_as_bool(s.value("recognition/lm", True)))
        self.controller.use_lm = None if self.act_lm.isChecked() else False
        self.saliency.set_method(str(s.value("saliency/method", "gradient")))
        self._rebuild_recent()

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("saliency/method", self.saliency.current_method())
        s.sync()

    def _set_guides(self, on: bool) -> None:
        self.canvas.show_guides = on
        self.canvas.update()
        self.settings.setValue("canvas/guides", on)

    def _set_lm(self, on: bool) -> None:
        # None lets the recogniser use its LM when it has one; False turns it off.
        self.controller.use_lm = None if on else False
        self.settings.setValue("recognition/lm", on)
        self.controller.invalidate()

    def recent_files(self) -> list[str]:
        value = self.settings.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: Path) -> None:
        path = Path(path).absolute()  # a relative name means nothing once started from elsewhere
        items = [str(path)] + [p for p in self.recent_files() if p != str(path)]
        self.settings.setValue("files/recent", items[:MAX_RECENT])
        self.settings.setValue("files/lastDir", str(path.parent))
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for i, p in enumerate(self.recent_files()):
            act = self.recent_menu.addAction(f"&{i + 1} {Path(p).name}")
            act.setToolTip(p)
            act.triggered.connect(lambda _=False, p=p: self.open_file(p))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    # ------------------------------------------------------------------ model
    def load_model(self, path: Optional[str]) -> None:
        """Load ``path`` (None: the default model) in the background."""
        self.model_label.setText(f"Loading {'model ' + str(path) if path else 'the default model'}...")
        self.controller.load_model(path)

    def set_model_path(self, path: Optional[str]) -> None:
        """Use ``path`` (None: the default model) from now on. The choice is remembered once the
        model has loaded; one that fails to load leaves the model in use, and the setting, as they were."""
        self._model_choice = path or ""
        self.load_model(path)

    def choose_model(self) -> None:
        path = self.ask_open_path("Choose a model file", "inkread models (*.pt);;All files (*)")
        if path:
            self.set_model_path(str(path))

    def fine_tune(self) -> bool:
        """Fine-tune the current model on a folder of saved lines, in the background.

        While it runs, the same action stops it (the model trained so far is kept).
        Returns True when a fine-tune started.
        """
        if self.tuner.running:
            self.tuner.stop()
            self._status("Stopping fine-tuning after the current step...")
            return False
        folder = self.ask_folder("Fine-tune on the lines in this folder")
        if not folder:
            return False
        n = self.page_lines()
        if n and self.ask_yes_no("Fine-tune on my writing",
                                 f"Also save this page's {n} recognised line{'s' * (n != 1)} into "
                                 f"{folder} and train on {'them' if n != 1 else 'it'} too?"):
            if self.write_lines(folder) < n:
                return False  # the error is shown; nothing trained on half the page
        base = str(self.settings.value("model/path", "") or "") or None
        self.settings.setValue("files/linesDir", str(folder))
        out = self.tuner.start(str(folder), base, self.models_dir)
        self.act_finetune.setText("Stop &fine-tuning")
        self.busy_label.setText("fine-tuning: starting...")
        self._status(f"Fine-tuning on the lines in {folder}; the result will be {out}", 0)
        return True

    def _fine_tune_ended(self) -> None:
        self.act_finetune.setText("&Fine-tune on my writing...")
        self.busy_label.setText("")

    def _fine_tuned(self, result: Any) -> None:
        self._fine_tune_ended()
        if self.closing:
            return
        self.set_model_path(str(result.out))
        lines = f"{result.lines} line{'s' * (result.lines != 1)}"
        self._status(f"Fine-tuned on {lines}: now using {result.out.name}", 0)
        stopped = f" (stopped after {result.steps} steps)" if result.stopped == "stopped on request" else ""
        text = [f"Fine-tuned {result.base.name} on {lines} in {result.seconds:.0f} s{stopped}. "
                f"Greedy errors on {'them' if result.lines != 1 else 'it'}: "
                f"{100 * result.before:.1f}% before, {100 * result.after:.1f}% after.",
                f"Now using {result.out}. Settings > Use the default model goes back."]
        text += [t[0].upper() + t[1:] for t in (result.advice, result.skipped_text(5)) if t]
        self.show_info("Fine-tuning done", "\n\n".join(text))

    def _fine_tune_failed(self, message: str) -> None:
        self._fine_tune_ended()
        self.show_error("Cannot fine-tune", message)

    def _model_loaded(self, label: str) -> None:
        if self._model_choice is not None:
            self.settings.setValue("model/path", self._model_choice)
            self._model_choice = None
        self._model_name = label
        self.model_label.setText(f"Model: {label}")
        self.results.text.placeholder = "Write on the canvas; the text appears here."
        self.results.text.update()

    def _model_failed(self, message: str) -> None:
        chosen, self._model_choice = self._model_choice, None
        if chosen is not None and self.controller.recognizer is not None:  # keep the working model
            self.model_label.setText(f"Model: {self._model_name}")
            self.show_error("Cannot use this model", f"{message}; still using {self._model_name}")
            return
        self.model_label.setText(f"No model: {message}")
        self.results.text.placeholder = ("No recognition model is loaded, so no text. You can "
                                         "still write, open and save ink. Choose a model with "
                                         "Settings > Choose model file.")
        self.results.text.update()
        self._status("No recognition model; the canvas works as an ink editor.")

    def _status(self, text: str, ms: int = 6000) -> None:
        self.statusBar().showMessage(text, ms)

    # ---------------------------------------------------------------- changes
    def _doc_changed(self) -> None:
        self.saliency.set_status(self.saliency.HINT)  # an explanation shown was of other ink
        self.heat_request = None
        self.controller.schedule()
        if self.unsaved():
            self.autosaver.changed()
        else:  # nothing unsaved (just opened, saved, or an empty page): nothing to recover
            self.autosaver.discard()
        self._update_state()

    def _update_state(self) -> None:
        doc = self.canvas.doc
        self.act_undo.setEnabled(doc.can_undo())
        self.act_redo.setEnabled(doc.can_redo())
        self.act_clear.setEnabled(len(doc) > 0)
        name = self.path.name if self.path else "untitled"
        self.setWindowTitle(f"{name}{'*' if self.unsaved() else ''} - inkread")

    def unsaved(self) -> bool:
        """Whether the page holds ink, or typed or chosen line text, that is not saved."""
        doc = self.canvas.doc
        return bool(len(doc)) and (doc.modified or self.text_changed)

    # ---------------------------------------------------------------- results
    def show_result(self, result: PageResult) -> None:
        """Show a fresh recognition: text, n-best, timing, and boxes on the ink."""
        for res in result.lines:  # typed text outlives a new recognition of the same strokes
            if res.key in self.corrections and res.shown_text != self.corrections[res.key]:
                _use_text(res, self.corrections[res.key])
        self.results.set_result(result)
        self.canvas.set_boxes(self._boxes(result))
        self.canvas.set_selected(None)
        if self.demo.view.rows is not None or self.demo.status.text():
            self.demo.set_rows(None, "Press Replay to show the rows for the current line.")

    def _boxes(self, result: PageResult) -> list[CharBox]:
        arr = self.canvas.doc.to_ink().to_array()
        boxes = []
        for ln, res in enumerate(result.lines):
            if res.chosen != 0:
                continue  # spans belong to the best hypothesis only
            for ch, index, pts in res.chars:
                page = result.char_points(ln, index)
                if not has_box(ch, pts) or page.size == 0:
                    continue
                xy = arr[page, :2]
                rect = (float(xy[:, 0].min()), float(xy[:, 1].min()),
                        float(xy[:, 0].max()), float(xy[:, 1].max()))
                boxes.append(CharBox((ln, index), ch, rect))
        return boxes

    def choose_alternative(self, line: int, index: int) -> None:
        result = self.results.result
        if result is None or not 0 <= line < len(result.lines):
            return
        changed = result.lines[line].chosen != index
        result.lines[line].chosen = index
        self.results.set_result(result)
        self.results.show_line(line)
        self.canvas.set_boxes(self._boxes(result))
        self._status(f"Line {line + 1}: using {result.lines[line].shown_text!r}")
        if changed:
            self._text_edited()

    def _text_edited(self) -> None:
        """A line's text was chosen or typed: the text a save writes has changed."""
        self.text_changed = True
        self.autosaver.changed()
        self._update_state()

    def correct_line(self) -> bool:
        """Type the text of the current line: it becomes the chosen alternative, marked as typed.

        What File > Save lines for fine-tuning labels the line with. Returns True when changed.
        """
        result, line = self.results.result, self.results.current_line
        if result is None or not 0 <= line < len(result.lines) or result.revision != self.canvas.doc.revision:
            self.show_error("Cannot correct the text", "No recognised line yet: write, and wait for the text.")
            return False
        res = result.lines[line]
        text = self.ask_text(f"Correct line {line + 1}", "What the line says:", res.shown_text)
        text = " ".join((text or "").split())
        if not text:
            return False
        before = (res.shown_text, res.chosen)
        self.corrections[res.key] = text
        self.choose_alternative(line, _use_text(res, text))
        if (res.shown_text, res.chosen) != before:
            self._text_edited()
        return True

    # --------------------------------------------------------------- saliency
    def select_char(self, line: int, index: int) -> None:
        """A character was clicked: select it and compute its heat."""
        result = self.results.result
        if result is None or not 0 <= line < len(result.lines):
            return
        key = (line, index)
        self.canvas.set_selected(key)
        self.results.text.set_selected(key)
        self.results.show_line(line)
        self.explain_selected()

    def explain_selected(self) -> None:
        key, result = self.canvas.selected, self.results.result
        if key is None or result is None:
            return
        line, index = key
        res = result.lines[line]
        if res.chosen != 0 or explain.unavailable() or self.controller.recognizer is None:
            self.clear_heat()  # the heat shown belongs to another character
        if res.chosen != 0:
            self.saliency.set_status("Saliency is computed for the best hypothesis; "
                                     "choose it again in the list to explain its characters.")
            return
        why = explain.unavailable()
        if why or self.controller.recognizer is None:
            self.saliency.set_status(why or "No model loaded.")
            return
        method = self.saliency.current_method()
        ink = line_ink(self.canvas.doc.to_ink(), result.layout[line])
        rec = self.controller.recognizer
        self.heat_request = (result.revision, line, index, method)
        self.saliency.set_status(f"Computing {explain.METHODS[method].lower()} for "
                                 f"{res.text[index]!r}...")
        ch, frames = res.text[index], result.frames_of(line, index)
        self.controller.explain(self.heat_request,
                                lambda: explain.char_heat(rec, ink, index, method, ch, frames))

    def _explained(self, revision: int, request: Any, value: Any) -> None:
        if request == ("demo", revision):
            self._demo_ready(value)
            return
        if request != self.heat_request or self.results.result is None:
            return  # another character or another ink by now
        if isinstance(value, str):
            self.saliency.set_status(f"Saliency failed: {value}")
            return
        _, line, index, method = request
        self.set_heat(line, np.asarray(value))
        ch = self.results.result.lines[line].text[index]
        self.saliency.set_status(f"{explain.METHODS[method]} for {ch!r}: brighter, thicker ink "
                                 "drove this character more.")

    def set_heat(self, line: int, scores: np.ndarray) -> None:
        """Show (N_line,) scores of line ``line`` as heat on the page (other lines grey)."""
        levels = np.zeros(self.canvas.doc.num_points)
        levels[self.results.result.layout[line].points] = normalise(scores)
        self.canvas.set_heat(levels)

    def clear_heat(self) -> None:
        self.heat_request = None
        self.canvas.set_heat(None)
        self.saliency.set_status(self.saliency.HINT)

    def _method_changed(self, method: str) -> None:
        self.settings.setValue("saliency/method", method)
        if self.canvas.selected is not None:
            self.explain_selected()

    def replay_demo(self) -> None:
        self.demo_dock.show()
        self.demo.replay()

    def compute_demo(self) -> None:
        result = self.results.result
        why = explain.demo_unavailable()
        if why or self.controller.recognizer is None or not result or not result.lines:
            self.demo.set_rows(None, why or "Write and recognise a line first.")
            return
        ink = line_ink(self.canvas.doc.to_ink(), result.layout[self.results.current_line])
        rec = self.controller.recognizer
        self.demo.set_rows(None, "Computing...")
        self.controller.explain(("demo", result.revision), lambda: explain.demo_rows(rec, ink))

    def _demo_ready(self, value: Any) -> None:
        if isinstance(value, str):
            self.demo.set_rows(None, f"Demo failed: {value}")
            return
        self.demo.set_rows(value, f"Line {self.results.current_line + 1}: "
                                  f"{value.probs.shape[0]} output frames")
        self.demo.replay()

    # ------------------------------------------------------------------ files
    def new_page(self) -> None:
        if self.confirm_discard():
            self._set_document(InkDocument(), None)

    def _set_document(self, doc: InkDocument, path: Optional[Path]) -> None:
        self.path = path
        self.corrections.clear()
        self.text_changed = False
        self._restore_typed(doc)
        self.results.set_result(None)
        self.canvas.set_document(doc)
        self.controller.schedule(0)

    def open_file(self, path: Optional[os.PathLike | str] = None) -> bool:
        """Open an ink file (asks for one when ``path`` is None); errors go to a message box."""
        if not self.confirm_discard():
            return False
        if path is None:
            path = self.ask_open_path("Open ink", open_filter())
            if not path:
                return False
        path = Path(path).absolute()
        try:
            ink = read_ink(path)
            doc = InkDocument()
            doc.load(ink)
        except InkreadError as exc:
            self.show_error("Cannot open ink", str(exc))
            return False
        writable = path.suffix.lower() in SAVE_FILTERS.values()
        self._set_document(doc, path if writable else None)
        self._add_recent(path)
        self.autosaver.discard()
        self._status(f"Opened {path.name}: {len(doc)} strokes, {doc.num_points} points")
        self._update_state()
        return True

    def ink_to_save(self) -> Ink:
        """The page as saved: the loaded label while the strokes are unchanged, else the shown text;
        typed line texts in ``metadata["typed_lines"]`` (each line's stroke indices and text), so
        that opening the file (or recovering it) brings them back."""
        doc = self.canvas.doc
        ink = doc.to_ink()
        if not doc.pristine or ink.text is None or self.text_changed:
            text = self.results.text.text() if self.results.result else None
            ink = ink.replace(text=text or None)
        meta = {k: v for k, v in ink.metadata.items() if k != TYPED_LINES}
        pos = {sid: k for k, sid in enumerate(doc.ids)}
        typed = sorted(({"strokes": [pos[i] for i in key], "text": text} for key, text in self.corrections.items()
                        if key and all(i in pos for i in key)), key=lambda d: d["strokes"])
        if typed:
            meta[TYPED_LINES] = typed
        return ink.replace(metadata=meta)

    def _ink_to_autosave(self) -> Ink:
        """:meth:`ink_to_save`, plus the file the page came from, so that a recovered page saves there."""
        ink = self.ink_to_save()
        if self.path is None:
            return ink
        return ink.replace(metadata={**ink.metadata, AUTOSAVED_FROM: str(self.path)})

    def _restore_typed(self, doc: InkDocument) -> None:
        """Typed line texts saved with the page (see :meth:`ink_to_save`), as corrections again;
        entries that do not fit the page's strokes are left out."""
        typed = doc.template.metadata.get(TYPED_LINES)
        for entry in typed if isinstance(typed, list) else []:
            idx = entry.get("strokes") if isinstance(entry, dict) else None
            text = entry.get("text") if isinstance(entry, dict) else None
            if (isinstance(text, str) and text.split() and isinstance(idx, list) and idx
                    and all(isinstance(i, int) and 0 <= i < len(doc.ids) for i in idx)):
                self.corrections[tuple(doc.ids[i] for i in idx)] = " ".join(text.split())
            else:
                log.info("typed line text not restored: %r", entry)

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._write(self.path)

    def save_as(self) -> bool:
        path = self.ask_save_path("Save ink", SAVE_FILTERS)
        return bool(path) and self._write(Path(path))

    def _write(self, path: Path) -> bool:
        ink = self.ink_to_save()
        try:
            write_ink(ink, path)
        except InkreadError as exc:
            self.show_error("Cannot save ink", str(exc))
            return False
        self.canvas.doc.template = ink.replace(strokes=[], char_of_point=None)  # the file's label now
        self.path = path
        self.canvas.doc.mark_saved()
        self.text_changed = False
        self.autosaver.discard()
        self._add_recent(path)
        self._update_state()
        self._status(f"Saved {path}")
        return True

    def save_lines(self) -> int:
        """Write each recognised line as its own native file, labelled with its shown text.

        The files are what ``inkread finetune`` and Settings > Fine-tune on my writing
        train on (README, "Fine-tune on your own writing"). Lines with no text are
        skipped; existing files are never overwritten, and a line already in the folder
        with the same ink and text is not written again. Returns how many of the page's
        lines are in the folder now.
        """
        if not self.page_lines():
            self.show_error("Cannot save lines",
                            "No recognised text for the current ink yet: write, and wait for the text.")
            return 0
        folder = self.ask_folder("Save lines for fine-tuning")
        if not folder:
            return 0
        return self.write_lines(folder)

    def page_lines(self) -> int:
        """How many lines of the current ink have recognised text (0 while it is being recognised)."""
        result, doc = self.results.result, self.canvas.doc
        if result is None or result.revision != doc.revision:
            return 0
        return sum(bool(res.shown_text.strip()) for res in result.lines)

    def write_lines(self, folder: str) -> int:
        """Write the page's recognised lines into ``folder`` (see :meth:`save_lines`)."""
        result, doc = self.results.result, self.canvas.doc
        ink, stem, written, there = doc.to_ink(), time.strftime("line-%Y%m%d-%H%M%S"), 0, 0
        try:
            saved = _saved_lines(Path(folder))
            for k, (res, line) in enumerate(zip(result.lines, result.layout), 1):
                text = " ".join(res.shown_text.split())
                if not text:
                    continue
                sub = line_ink(ink, line).replace(text=text)
                if _line_key(sub) in saved:
                    there += 1
                    continue
                path, n = Path(folder) / f"{stem}-{k:02d}.json", 1
                while path.exists():
                    n += 1
                    path = Path(folder) / f"{stem}-{k:02d}-{n}.json"
                write_ink(sub.replace(id=path.stem), path)
                written += 1
        except (InkreadError, OSError) as exc:
            self.show_error("Cannot save lines", f"{folder}: {exc}")
            return written + there
        self.settings.setValue("files/linesDir", str(folder))
        self._status(f"Saved {written} line{'s' * (written != 1)} to {folder}"
                     + (f" ({there} already there)" if there else ""))
        return written + there

    def export_image(self) -> bool:
        """Export the ink as PNG or SVG through :mod:`inkread.render`."""
        ink = self.canvas.doc.to_ink()
        if ink.is_empty:
            self.show_error("Nothing to export", "The page has no ink yet.")
            return False
        path = self.ask_save_path("Export image", EXPORT_FILTERS)
        if not path:
            return False
        try:
            from inkread import render
            render.save(ink, path, width=max(self.canvas.width(), 400))
        except (InkreadError, ImportError) as exc:
            self.show_error("Cannot export", str(exc))
            return False
        self._status(f"Exported {path}")
        return True

    def export_view(self) -> bool:
        """Save the canvas as shown (with boxes and heat) as PNG."""
        return self._save_pixmap(self.canvas.render_image(), "Export view")

    def export_demo(self) -> bool:
        return self._save_pixmap(self.demo.view.image(), "Export demo")

    def _save_pixmap(self, pixmap, title: str) -> bool:
        path = self.ask_save_path(title, {"PNG image (*.png)": ".png"})
        if not path:
            return False
        if not pixmap.save(str(path), "PNG"):
            self.show_error(title, f"{path}: cannot write the PNG file")
            return False
        self._status(f"Saved {path}")
        return True

    # --------------------------------------------------------------- recovery
    def offer_recovery(self) -> bool:
        """If a previous session left an autosave, offer to restore it."""
        ink = self.autosaver.pending()
        if ink is None:
            return False
        if not self.ask_recover(ink):
            self.autosaver.discard()
            return False
        src = ink.metadata.get(AUTOSAVED_FROM)
        ink = ink.replace(metadata={k: v for k, v in ink.metadata.items() if k != AUTOSAVED_FROM})
        path = Path(src) if isinstance(src, str) and Path(src).suffix.lower() in SAVE_FILTERS.values() else None
        doc = InkDocument()
        doc.load(ink)
        doc.saved_revision = -1  # recovered ink is unsaved
        self._set_document(doc, path)
        self._update_state()
        self._status(f"Recovered {len(doc)} strokes from the last session")
        return True

    # ---------------------------------------------------------------- dialogs
    def show_error(self, title: str, message: str) -> None:
        """One-line error in a message box (tests replace this)."""
        self.last_error = message
        log.info("%s: %s", title, message)
        QMessageBox.warning(self, title, message)

    def show_info(self, title: str, message: str) -> None:
        """A report the user reads and dismisses (tests replace this)."""
        log.info("%s: %s", title, message)
        QMessageBox.information(self, title, message)

    def ask_open_path(self, title: str, filters: str) -> Optional[str]:
        start = str(self.settings.value("files/lastDir", "") or "")
        path, _ = QFileDialog.getOpenFileName(self, title, start, filters)
        return path or None

    def ask_text(self, title: str, label: str, text: str) -> Optional[str]:
        value, ok = QInputDialog.getText(self, title, label, QLineEdit.Normal, text)
        return value if ok else None

    def ask_yes_no(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question, QMessageBox.Yes | QMessageBox.No,
                                      QMessageBox.Yes)
        return answer == QMessageBox.Yes

    def ask_folder(self, title: str) -> Optional[str]:
        start = str(self.settings.value("files/linesDir", "") or self.settings.value("files/lastDir", "") or "")
        return QFileDialog.getExistingDirectory(self, title, start) or None

    def ask_save_path(self, title: str, filters: dict[str, str]) -> Optional[str]:
        start = str(self.path.with_suffix("")) if self.path else \
            str(self.settings.value("files/lastDir", "") or "")
        path, chosen = QFileDialog.getSaveFileName(self, title, start, ";;".join(filters))
        if not path:
            return None
        suffixes = set(filters.values())
        if Path(path).suffix.lower() not in suffixes:
            path += filters.get(chosen, next(iter(suffixes)))
        return path

    def confirm_discard(self) -> bool:
        """True when there are no unsaved strokes or the user agrees to lose them."""
        if not self.unsaved():
            return True
        answer = QMessageBox.question(
            self, "Unsaved ink", "The page has unsaved ink. Save it first?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Save:
            return self.save()
        return answer == QMessageBox.Discard

    def ask_recover(self, ink: Ink) -> bool:
        answer = QMessageBox.question(
            self, "Recover ink",
            f"inkread did not close cleanly last time. Recover the unsaved page "
            f"({len(ink)} strokes)?", QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
        return answer == QMessageBox.Yes

    # ----------------------------------------------------------- window events
    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:
        if any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev: QDropEvent) -> None:
        files = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if files:
            ev.acceptProposedAction()
            # Open after the drop returns, so a message box does not block the drag source.
            QTimer.singleShot(0, lambda: self.open_file(files[0]))

    def closeEvent(self, ev: QCloseEvent) -> None:
        if not self.confirm_discard():
            ev.ignore()
            return
        self._save_settings()
        self.closing = True
        if self.tuner.running:
            self.tuner.stop(wait=10.0)
        self.controller.shutdown()
        self.autosaver.discard()
        ev.accept()


def _use_text(res: Any, text: str) -> int:
    """Make ``text`` a line's chosen alternative: the recognised one that reads so, else a
    typed one (score NaN, shown as "typed"; one per line, replaced by the next). Returns its index."""
    same = [i for i, (t, score) in enumerate(res.nbest) if t == text and not math.isnan(score)]
    typed = [i for i, (t, score) in enumerate(res.nbest) if math.isnan(score)]
    if same:
        index = same[0]
    elif typed:
        index = typed[0]
        res.nbest[index] = (text, math.nan)
    else:
        res.nbest.append((text, math.nan))
        index = len(res.nbest) - 1
    res.chosen = index
    return index


def _line_key(ink: Ink) -> tuple:
    """What makes two saved lines the same: their text and their points (to 0.01)."""
    return ink.text, np.round(ink.to_array()[:, :2], 2).tobytes()


def _saved_lines(folder: Path) -> set:
    """The :func:`_line_key` of each native line file in ``folder`` that reads (others are left be)."""
    keys = set()
    for f in folder.glob("*.json"):
        try:
            keys.add(_line_key(read_ink(f, "native")))
        except InkreadError:
            continue
    return keys


def _as_bool(value: Any) -> bool:
    """QSettings returns 'true'/'false' strings from INI files."""
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)
