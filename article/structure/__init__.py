"""The vocabulary every stage shares, so that no stage imports another for it: the data types an article moves
through the build in (types.py), the render side's error type (errors.py), which URLs an article may link to
(urls.py) and links into the weight explorer (explorer_links.py), the site's look (theme.py) and JSON for pages
(jsonio.py)."""
