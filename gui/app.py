"""Entry point of the desktop app: ``inkread gui`` and the ``inkread-gui`` launcher."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:
    from .mainwindow import MainWindow

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="inkread-gui", description="Write, read it live, see why.")
    configure(p)
    return p


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="ink file to open (any supported format)")
    p.add_argument("--model", metavar="M", help="model file (default: the saved choice, "
                                                "else the shipped default model)")


def binding_problem() -> Optional[str]:
    """A known-bad Qt binding for this Python, in one line, or None."""
    import PySide6
    if PySide6.__version__ == "6.12.0" and sys.version_info < (3, 12):
        return ("PySide6 6.12.0 miscounts references to None on Python < 3.12 and crashes long "
                "sessions; install another version: pip install 'PySide6-Essentials!=6.12.0'")
    return None


def begin(window: "MainWindow", file: Optional[str] = None) -> None:
    """What the app does once its window shows: offer to recover the page a crash left, then open
    ``file``. Recovery comes first also when a file is named: opening it would discard the autosave
    (a recovered page is unsaved, so opening the file asks first whether to save it)."""
    window.offer_recovery()
    if file:
        window.open_file(file)


def run(file: Optional[str] = None, model: Optional[str] = None,
        qt_args: Optional[Sequence[str]] = None) -> int:
    """Start the app and run its event loop; returns the exit status."""
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from .mainwindow import MainWindow
    QCoreApplication.setOrganizationName("inkread")
    QCoreApplication.setApplicationName("inkread")
    app = QApplication.instance() or QApplication(list(qt_args or sys.argv[:1]))
    window = MainWindow(model=model)
    window.show()
    problem = binding_problem()
    if problem:
        log.warning("%s", problem)
        QMessageBox.warning(window, "Qt binding", problem)
    QTimer.singleShot(0, lambda: begin(window, file))
    return int(app.exec())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``inkread-gui [FILE] [--model M]``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args.file, args.model)


if __name__ == "__main__":
    raise SystemExit(main())
