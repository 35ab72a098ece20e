"""Sphinx configuration of the reading version (`python -m grader site`).

The book is built from a temporary folder that grader/site.py fills with the reading copies
of the solution notebooks and an index page; nothing is executed (the stored outputs are
shown) and nothing is fetched: the theme's assets come with the pip packages and MathJax with
jupyter-server-mathjax, copied into the site by grader/site.py.
"""
project = "Backprop by hand"
html_title = "Backprop by hand"
language = "en"

extensions = ["myst_nb"]
root_doc = "index"
smartquotes = False                  # the text as written (and as searched), like JupyterLab
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# a heading that skips a level (### under a # title) is no error; the notebooks have none now
suppress_warnings = ["myst.header"]

# the notebooks are shown as stored, run in full by `python -m grader execute`
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True      # $$...$$ inside a paragraph, as JupyterLab renders it
myst_heading_anchors = 3
myst_update_mathjax = False          # its settings are MathJax 3's; the site ships MathJax 2

# MathJax 2 from jupyter-server-mathjax, in the site itself (grader/site.py copies it there)
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
mathjax2_config = {
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                "processEscapes": True, "processEnvironments": True},
    "TeX": {"equationNumbers": {"autoNumber": "AMS", "useLabelIds": True}},
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web",
                 "imageFont": None, "scale": 92},
    "displayAlign": "center",
    "messageStyle": "none",
}

html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "navbar_persistent": [],           # the search field is in the sidebar, not in a top bar
    "show_toc_level": 2,
    "use_download_button": False,      # templates/download-notebook.html instead
    "article_header_end": ["download-notebook.html", "article-header-buttons.html"],
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_prev_next": True,
    "footer_content_items": [],        # no author or copyright line
    "navigation_with_keys": False,
    "pygments_light_style": "tango",
    "pygments_dark_style": "monokai",
}
templates_path = ["templates"]
html_static_path = ["static"]
html_css_files = ["course.css"]
html_js_files = ["search-math.js"]   # search excerpts show formulas as text, not TeX
html_copy_source = True          # each stage's notebook, downloaded from _sources/
html_sourcelink_suffix = ""
html_show_sourcelink = False
html_show_sphinx = False
html_last_updated_fmt = None
html_permalinks_icon = "#"


def _generator(app, pagename, templatename, context, doctree):
    """Mark every page as built by the course's command (it refuses to overwrite other sites)."""
    context["metatags"] = (context.get("metatags", "")
                           + '\n<meta name="generator" content="python -m grader site">')


def setup(app):
    app.connect("html-page-context", _generator)
