"""The torch-free freshness check: what the analyses compute from is in the fingerprint; how they run is not."""
from __future__ import annotations

from pathlib import Path

import pytest

from article.analysis_stage import analysis_config, inputs_fingerprint
from article.config.site import load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_worker_count_does_not_make_the_analyses_stale():
    config = load_config(REPO)
    one, three = (inputs_fingerprint(REPO, analysis_config(REPO, config, jobs)) for jobs in (1, 3))
    assert analysis_config(REPO, config, 3)["n_jobs"] == 3  # the setting still reaches the analysis
    assert one == three


def test_a_result_setting_does_change_the_fingerprint():
    config = load_config(REPO)
    cfg = analysis_config(REPO, config)
    changed = {**cfg, "featureviz": {**cfg["featureviz"], "steps": cfg["featureviz"]["steps"] + 1}}
    assert inputs_fingerprint(REPO, cfg) != inputs_fingerprint(REPO, changed)


def test_a_dask_backend_without_a_scheduler_fails_even_when_the_analyses_are_cached():
    import pytest

    from article.structure.errors import BuildError

    with pytest.raises(BuildError, match="needs the scheduler's address"):
        analysis_config(REPO, load_config(REPO), backend="dask")
    assert analysis_config(REPO, load_config(REPO), backend="dask", scheduler="tcp://10.0.0.5:8786")["backend"] == "dask"
