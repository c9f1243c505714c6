"""Front-matter recipes are checked without torch, at the line of the offending field; prose numbers that do not
exist (the random baseline of a 1x1 kernel) render as "unavailable" instead of crashing the build."""
from __future__ import annotations

import pytest

from article.config.recipe_spec import field_lines, validate_recipe
from article.figures.prose_numbers import network
from article.markup.templating import fmt, pct


class Bad(Exception):
    pass


def fail(message: str, field: str | None) -> Bad:
    return Bad(f"{field}: {message}")


@pytest.mark.parametrize("recipe, expected", [
    ({"layer": ["conv1"]}, "layer: recipe: unknown field(s) layer (known: layers, expansions"),
    ({"layers": "conv1"}, "layers: recipe.layers must be a list of layer names"),
    ({"layers": ["conv1", ""]}, "layers: recipe.layers must be a list"),
    ({"expansions": ["a => b"]}, "expansions: recipe.expansions entry 'a => b' must look like 'lower -> upper'"),
    ({"expansions": ["a -> b -> c"]}, "expansions: recipe.expansions entry"),
    ({"context": {"weights": "a -> b"}}, "context: recipe.context must be a list"),
    ({"context": [{"outputs": 4}]}, "context: recipe.context[0] must be a mapping with weights"),
    ({"context": [{"weights": "a -> b", "output": 4}]}, "context: recipe.context[0]: unknown field(s) output"),
    ({"context": [{"weights": "a -> b", "outputs": 0}]}, "context: recipe.context[0].outputs must be an integer from 1 to 32"),
    ({"context": [{"weights": "a -> b", "inputs": True}]}, "context: recipe.context[0].inputs must be an integer"),
    ({"context": [{"weights": "a -> b", "neurons": [1, -2]}]}, "context: recipe.context[0].neurons must be an integer"),
    ({"context": [{"weights": "a -> b", "neurons": list(range(40))}]}, "context: recipe.context[0].neurons must be a list of 1 to 32"),
    ({"featureviz": "best"}, "featureviz: recipe.featureviz must be one of draft, default, high"),
    ({"featureviz": {"size": 100000}}, "featureviz: recipe.featureviz.size must be an integer from 16 to 256"),
    ({"featureviz": {"stpes": 10}}, "featureviz: recipe.featureviz: unknown field(s) stpes"),
    ({"first_layer": 3}, "first_layer: recipe.first_layer must be a conv name"),
    ({"layers": [f"c{i}" for i in range(300)]}, "layers: recipe.layers has 300 entries (at most 200)"),
    ("layers: [a]", "None: recipe must be a mapping"),
])
def test_bad_recipes_name_the_field(recipe, expected):
    with pytest.raises(Bad) as err:
        validate_recipe(recipe, fail)
    assert str(err.value).startswith(expected), str(err.value)


def test_good_recipe_is_normalized():
    out = validate_recipe({"layers": [" conv1 "], "expansions": ["blocks", "features.2->features.4"],
                           "context": [{"weights": "features.3->features.4", "neurons": [3, 1], "outputs": 4}],
                           "featureviz": "draft", "first_layer": "features.0.0"}, fail)
    assert out == {"layers": ["conv1"], "expansions": ["blocks", "features.2 -> features.4"],
                   "context": [{"weights": "features.3 -> features.4", "neurons": [3, 1], "outputs": 4}],
                   "featureviz": "draft", "first_layer": "features.0.0"}
    assert validate_recipe(None, fail) == {}


def test_field_lines_point_into_the_recipe():
    yaml_text = ("title: t\n"
                 "models:\n"
                 "  net:\n"
                 "    factory: 'net:make'\n"
                 "    recipe:\n"
                 "      layers: [a]\n"
                 "      context:\n"
                 "        - {weights: a}\n")
    lines = field_lines(yaml_text)  # file line = YAML line + 1 (the opening ---)
    assert lines[("net", "factory")] == 5
    assert lines[("net", "layers")] == 7
    assert lines[("net", "context")] == 8


def test_a_1x1_last_layer_has_no_baseline_and_renders_unavailable():
    entry = {"label": "net", "info": {"parameters": 10, "conv_layers": []}, "tensors": [
        {"id": "a", "kind": "kernel", "source": None, "label": "a", "shape": [4, 4, 1, 1], "R_layer": 0.0, "C_layer": 0.0}]}
    numbers = network(entry)
    assert numbers["baseline"] is None and numbers["last_ratio"] is None and numbers["median_block_ratio"] is None
    assert fmt(numbers["last_ratio"]) == "unavailable" and pct(None) == "unavailable"
    with pytest.raises(TypeError):  # a number that is there but not finite is still an error
        fmt(float("nan"))
