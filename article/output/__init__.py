"""Writing the site folder: the pages through the Jinja2 templates, the assets, the feed and the sitemap (writer.py),
the output folders and their atomic swap (sitedir.py), social preview images (social.py) and the check that every
internal link resolves (linkcheck.py)."""
