"""XML read safely: the one place annotation XML (VOC, CVAT) is parsed or sniffed.

Any DOCTYPE or ENTITY declaration is refused by a first expat pass before
ElementTree builds the tree (what defusedxml does), so XXE and billion-laughs
files are quarantined as ``unsafe-xml`` and nothing is fetched or expanded. The
same handlers guard ``sniff``, which ``--format auto`` runs on the first bytes of
a file to learn its root element without building anything.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xml.parsers.expat
from dataclasses import dataclass

from pipeline.ingest.candidate import AnnotationError

# An element path that only MIT LabelMe writes: polygon vertices as <pt><x/><y/></pt>.
LABELME_PATH = ("object", "polygon", "pt")


class _Unsafe(Exception):
    pass


class _Enough(Exception):
    pass


def _guarded_parser():
    def refuse(*_args):
        raise _Unsafe

    p = xml.parsers.expat.ParserCreate()
    p.StartDoctypeDeclHandler = refuse
    p.EntityDeclHandler = refuse
    p.ExternalEntityRefHandler = refuse
    return p


def parse_xml(raw: bytes) -> ET.Element:
    """The root element of a whole document; ``AnnotationError`` (``unsafe-xml``,
    ``malformed-xml``) when it declares a DOCTYPE or ENTITY or is not well formed."""
    p = _guarded_parser()
    try:
        p.Parse(raw, True)
    except _Unsafe:
        raise AnnotationError("unsafe-xml", "DOCTYPE/ENTITY declarations are refused "
                              "(external entities and entity expansion are never processed)") from None
    except xml.parsers.expat.ExpatError as err:
        raise AnnotationError("malformed-xml", str(err)) from None
    try:
        return ET.fromstring(raw)
    except ET.ParseError as err:
        raise AnnotationError("malformed-xml", str(err)) from None


@dataclass(frozen=True)
class Shape:
    """What the first bytes of an XML file show: its root element, and whether
    LabelMe's ``<object><polygon><pt>`` or VOC's ``<object><bndbox>`` appear."""

    root: str
    labelme: bool = False
    bndbox: bool = False


def sniff(head: bytes) -> Shape | None:
    """The shape of a document from its first bytes (it may be cut anywhere); None
    when they are not XML, or declare a DOCTYPE or ENTITY."""
    p = _guarded_parser()
    stack: list[str] = []
    found: dict[str, object] = {}

    def start(name, _attrs):
        stack.append(name)
        found.setdefault("root", name)
        if found["root"] != "annotation":
            raise _Enough  # only VOC's root needs a look inside
        if tuple(stack[-3:]) == LABELME_PATH:
            found["labelme"] = True
            raise _Enough
        if tuple(stack[-2:]) == ("object", "bndbox"):
            found["bndbox"] = True

    p.StartElementHandler = start
    p.EndElementHandler = lambda _name: stack.pop()
    try:
        p.Parse(head, False)
    except (_Enough, xml.parsers.expat.ExpatError):
        pass
    except _Unsafe:
        return None
    if "root" not in found:
        return None
    return Shape(str(found["root"]), bool(found.get("labelme")), bool(found.get("bndbox")))
