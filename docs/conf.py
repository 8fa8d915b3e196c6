"""Sphinx configuration of the noether-trackers documentation (``sphinx-build docs OUT``)."""

project = "noether-trackers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "alabaster"
# The docs link to repository files outside docs/ (examples, README): not documents.
suppress_warnings = ["myst.xref_missing"]
