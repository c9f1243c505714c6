"""What authors write, read and checked before anything renders: site.yml (site.py), front matter
(frontmatter.py), bring-your-own models (byo_spec.py, with dataset_spec.py and recipe_spec.py), YAML with limits
(yamlsafe.py) kept parsed by its text (yamlcache.py), and the bounds on what one author's input may cost (limits.py)."""
