"""Sphinx configuration of the noether-trackers documentation (``sphinx-build docs OUT``).

The reference pages are generated from the installed code by ``_ext/noether_reference.py``
(tracker options from each kind's constructor, the command line from its argparse parser):
build with every first-party plugin installed (``scripts/setup`` does).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "noether-trackers"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "noether_reference",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "furo"
html_title = "noether-trackers"
