"""The NMF explorer never shows a bare picture slot: neurons with the layer's pictures are ringed, any other says
where they are (article/figures/nmf_explorer.neuron_records)."""
from __future__ import annotations

from article.figures.nmf_explorer import first_pictured, neuron_records


def report(n: int) -> dict:
    """A tensor report of n neurons with 2x2 spatial factors (k = 3): only the fields the records read."""
    spatial = [[[[0.5, 0.5], [0.5, 0.5]]] * 3 for _ in range(n)]
    return {"nmf": {"k": 3, "spatial": spatial, "rgb": [[[[0.5, 0.5, 0.5]] * 2] * 2 for _ in range(n)],
                    "channels": [[[1.0, -0.5]] * 3 for _ in range(n)]},
            "top_inputs": {"index": [[0, 1]] * n, "strength": [[1.0, 0.5]] * n},
            "banding": {"R": [0.3] * n, "C": [0.3] * n}}


def test_neurons_with_the_most_pictures_are_ringed_and_the_others_say_where_they_are():
    own = {"1": "fv/1.png", "2": "fv/2.png"}
    factors = {"2": ["fv/2a.png", "fv/2b.png", "fv/2c.png"]}
    recs = neuron_records("L", report(4), pictures=(own, factors))
    assert [r["ring"] for r in recs] == [0, 0, 1, 0]
    assert recs[2]["note"] == ""  # all four pictures
    assert recs[1]["note"] == "No pictures of its factors;\nthe ringed neurons have them."  # its own picture only
    assert recs[0]["note"] == "No feature visualization of\nthis neuron; see the ringed ones."
    assert first_pictured(recs) == 2  # the figure opens on a neuron with pictures


def test_a_layer_of_equals_rings_nothing():
    every = {str(n): f"fv/{n}.png" for n in range(3)}
    recs = neuron_records("L", report(3), pictures=(every, {}))
    assert [r["ring"] for r in recs] == [0, 0, 0] and first_pictured(recs) == 0
    assert all(r["note"] == "No pictures of its factors\nin this layer." for r in recs)
    bare = neuron_records("L", report(2))
    assert all(r["note"] == "No feature visualization of\nthis neuron." and not r["ring"] for r in bare)
