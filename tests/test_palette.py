"""Every model in one chart has its own colour (article/figures/analysis_data.palette)."""
from article.figures import analysis_data as ad


def _manifest(**colours):
    return {"models": {name: {"label": name.upper(), "color": c} for name, c in colours.items()}}


def test_two_bring_your_own_models_get_two_colours():
    man = _manifest(lite1=ad.NEUTRAL, onet=ad.NEUTRAL, mnv2="#4c78a8")
    colours = ad.palette(man, ["lite1", "onet", "mnv2"])
    assert colours["LITE1"] == ad.NEUTRAL  # the first keeps its own
    assert len(set(colours.values())) == 3, colours
    assert colours["ONET"] != "#4c78a8"  # a spare colour no other model in the chart has


def test_a_family_keeps_one_colour_and_families_keep_theirs():
    man = {"models": {"lab-gap-s0": {"label": "lab: GAP", "color": "#e45756"},
                      "lab-gap-s1": {"label": "lab: GAP", "color": "#e45756"},
                      "mobilenet-v2": {"label": "MobileNetV2", "color": "#4c78a8"}}}
    assert ad.palette(man, ["lab-gap-s0", "lab-gap-s1", "mobilenet-v2"]) == {"lab: GAP": "#e45756",
                                                                             "MobileNetV2": "#4c78a8"}


def test_more_models_than_spare_colours_still_draws():
    man = _manifest(**{f"m{i}": ad.NEUTRAL for i in range(30)})
    assert len(ad.palette(man, [f"m{i}" for i in range(30)])) == 30
