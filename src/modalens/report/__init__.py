"""The report stage: one self-contained HTML page from whatever a folder holds.

``modalens report DIR`` walks ``DIR`` for the artefacts of every other command (runs,
attributions, Table I, agreement, strategies, sample views, strata, pruning, faithfulness),
turns each into a section with a plain-language reading, sortable tables and embedded
figures, and writes ``DIR/report.html``, which opens offline.

- :mod:`.collect` -- find the artefacts by the files that mark them.
- :mod:`.blocks` -- sections, tables, figures (images embedded as data URIs).
- :mod:`.reading` -- plain-language sentences from the attribution, ablation and agreement tables.
- :mod:`.sections` -- one section builder per artefact kind (runs, attributions, views, strata).
- :mod:`.studies` -- the sections of the validation studies (Table I, agreement, strategies,
  pruning, faithfulness, multitask comparison).
- :mod:`.render` -- the jinja2 template and package versions.
- :mod:`.build` -- :func:`build_report`.
"""

from .blocks import Figure, Section, Table
from .build import build_report
from .collect import Artefacts, collect
from .sections import register_section

__all__ = [
    "Artefacts",
    "build_report",
    "collect",
    "Figure",
    "register_section",
    "Section",
    "Table",
]
