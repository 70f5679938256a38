"""inkread's desktop app (PySide6), installed as :mod:`inkread.gui`.

Start it with ``inkread gui [FILE] [--model M]`` or ``inkread-gui``. The
library never imports this package; the app uses only inkread's public API
(:mod:`inkread.formats`, :mod:`inkread.recognizer`, :mod:`inkread.lines`, :mod:`inkread.saliency`,
:mod:`inkread.render`). Modules:

* :mod:`.canvas` - pen/mouse/touch input and drawing;
* :mod:`.document` - strokes, undo/redo (Qt-free);
* grouping strokes into text lines is :mod:`inkread.lines` (the command line splits pages too);
* :mod:`.recognition` - live recognition in a worker thread;
* :mod:`.results`, :mod:`.saliency_view` - the side panel and the demo panel;
* :mod:`.explain` - the bridge to :mod:`inkread.saliency` (Qt-free);
* :mod:`.autosave`, :mod:`.mainwindow`, :mod:`.app`.
"""
