"""An article's body to HTML: its numbers from data (templating.py, one segment at a time: body_segments.py), then
Markdown with math, citations, footnotes and `::: name` directives (renderer.py, mathml.py, bibliography.py,
directives.py), and the "Cite this article" block (citation.py)."""
