"""The weight explorer: a page for every analysed model (model_pages.py), its layers packed from the analysis records
(explorer_data.py) and its neurons' dataset examples (explorer_examples.py)."""
