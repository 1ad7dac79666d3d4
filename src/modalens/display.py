"""Result objects in notebooks: their tables as HTML (``_repr_html_``).

The result types of the long calls (:class:`~modalens.validation.AblationResult`,
:class:`~modalens.validation.PruningResult`, ...) show their main tables when they are the last
value of a Jupyter cell; :func:`tables_html` lays out one or more :class:`pandas.DataFrame`
under short titles. Their ``plot()`` methods return a :class:`matplotlib.figure.Figure` made
without pyplot (:func:`modalens.plotting.new_figure`): nothing is shown or written, and the
notebook's backend is left alone.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any


def tables_html(title: str, tables: Mapping[str, Any], max_rows: int = 60) -> str:
    """HTML of ``tables`` (caption -> :class:`pandas.DataFrame`) under the heading ``title``.

    Args:
        title: what the result is (e.g. ``"Table I (ablation)"``).
        tables: the tables in order, by caption (an empty caption shows none).
        max_rows: rows shown per table (the rest are elided by pandas).

    Returns:
        An HTML fragment.
    """
    parts = [f"<h4>{html.escape(title)}</h4>"]
    for caption, frame in tables.items():
        if caption:
            parts.append(f"<p>{html.escape(caption)}</p>")
        parts.append(frame.to_html(index=False, max_rows=max_rows, na_rep=""))
    return "\n".join(parts)
