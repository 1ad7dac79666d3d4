"""Where a spec's values live on disk: source files and no-data values.

A :class:`SourceFile` is a path template (formatted with ``{id}`` and the columns of the spec's
index table) and the 1-based bands read from it; modalities and targets both read from source
files. :func:`nodata_to_spec` writes a no-data value the way a spec YAML holds it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .remote import Location


@dataclass(frozen=True)
class SourceFile:
    """One raster file of a modality: a path template and the 1-based bands read from it.

    ``bands=None`` reads every band of the file; the modality then checks that the file's band
    count equals the number of band names it declares.
    """

    template: str
    bands: tuple[int, ...] | None = None

    def path(self, root: Location, fields: Mapping[str, Any]) -> Location:
        """The file of a sample: the template formatted with ``fields`` under ``root`` (a local
        folder or a URL, :mod:`modalens.data.remote`)."""
        try:
            rel = self.template.format(**fields)
        except KeyError as exc:
            raise SpecError(
                f"path template {self.template!r} uses {{{exc.args[0]}}} which the sample does "
                f"not have (sample id {fields.get('id')!r})",
                None,
                "use {id} or a column of the spec's index table",
            ) from None
        p = Path(rel)
        return p if p.is_absolute() else root / p

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.template}
        if self.bands is not None:
            d["bands"] = list(self.bands)
        return d


def nodata_to_spec(v: float | None) -> float | str | None:
    """A no-data value as a spec holds it: a number, ``"nan"`` or None."""
    if v is None:
        return None
    return "nan" if math.isnan(v) else v
