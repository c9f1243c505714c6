"""Analysis errors carry their model and front-matter field; the build places them by those, never by the text."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis.core.errors import AnalysisError, WeightsError
from article.analysis_stage import _attributed

BYO = [{"name": "tinynet", "article": "content/tiny/index.md", "line": 6,
        "field_lines": {"factory": 7, "weights": 8, "recipe": 9, "expansions": 10}}]
ROOT = Path("/project")


@pytest.mark.parametrize("field, line", [("weights", 8), ("expansions", 10), ("factory", 7), (None, 6),
                                         ("no-such-field", 6)])
def test_a_bring_your_own_models_error_points_at_the_line_of_its_field(field, line):
    err = _attributed(AnalysisError("something is wrong", model="tinynet", field=field), ROOT, BYO)
    assert str(err) == f"content/tiny/index.md:{line}: front matter model 'tinynet': something is wrong"


def test_a_site_models_error_points_at_site_yml():
    err = _attributed(WeightsError("weights file x.pth: sha256 mismatch", model="inceptionv1"), ROOT, BYO)
    assert str(err) == "/project/site.yml: analysis.models: model 'inceptionv1': weights file x.pth: sha256 mismatch"


def test_a_message_that_names_another_model_is_not_attributed_to_it():
    # Before, attribution stripped a "model '<name>': " prefix from the text; now only `model` decides.
    err = _attributed(AnalysisError("model 'tinynet': looks attributed", model=None), ROOT, BYO)
    assert str(err) == "model 'tinynet': looks attributed"


def test_an_unknown_lab_setting_is_reported_at_site_yml(tmp_path):
    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    with pytest.raises(AnalysisError) as caught:
        run(AnalysisConfig(models=[ModelSpec("banding-lab")], cache_dir=tmp_path,
                           lab={"stpes": 3}), progress=False)
    assert (caught.value.model, caught.value.field) == (None, "analysis.lab")
    assert str(_attributed(caught.value, ROOT, [])).startswith(
        "/project/site.yml: analysis.lab: unknown field(s) stpes (known: ")


def test_jobs_reach_the_analysis_as_an_argument_not_through_the_environment(monkeypatch):
    from article.analysis_stage import analysis_config
    from article.config.site import load_config
    from article.structure.errors import BuildError

    repo = Path(__file__).resolve().parent.parent
    config = load_config(repo)
    site = analysis_config(repo, config)["n_jobs"]
    monkeypatch.setenv("VW_JOBS", str(site + 5))  # the old side channel: no longer read
    assert analysis_config(repo, config)["n_jobs"] == site
    assert analysis_config(repo, config, jobs=site + 1)["n_jobs"] == site + 1
    with pytest.raises(BuildError, match="--jobs must be a positive integer, got 0"):
        analysis_config(repo, config, jobs=0)
