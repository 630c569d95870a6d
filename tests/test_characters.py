"""Scene sampling is seeded, varied and JSON-able; validation names the bad field in its message."""

from __future__ import annotations

import copy
import json

import pytest

from realtime.errors import CharacterCountError, SceneError
from realtime.scene.cartoon.characters import sample_scene, validate_scene


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_sample_scene_is_deterministic_json_and_valid(n: int) -> None:
    for seed in range(5):
        scene = sample_scene(n, seed)
        assert scene == sample_scene(n, seed)
        assert json.loads(json.dumps(scene)) == scene
        assert len(scene["characters"]) == n
        assert validate_scene(scene) == scene
    assert sample_scene(n, 0) != sample_scene(n, 1)


def test_scenes_vary_in_looks_and_layout() -> None:
    scenes = [sample_scene(1 + s % 4, s) for s in range(80)]
    chars = [c for s in scenes for c in s["characters"]]
    for key in ("hair", "hat", "eyes", "brows"):
        assert len({c[key]["style"] for c in chars}) >= 3, key
    assert len({c["accessories"]["neckwear"]["style"] for c in chars}) == 3
    assert len({s["background"]["pattern"] for s in scenes}) == 4
    # Character order on screen is not the index order, some neighbours overlap, some walk across.
    unsorted = overlapping = crossing = 0
    for s in scenes:
        xs = [c["home"][0] for c in s["characters"]]
        unsorted += xs != sorted(xs)
        for i, a in enumerate(s["characters"]):
            for b in s["characters"][i + 1 :]:
                overlapping += abs(a["home"][0] - b["home"][0]) < a["head"]["size"]
            crossing += abs(a["motion"]["drift"]["to"][0] - a["home"][0]) > a["head"]["size"]
    assert unsorted > 10 and overlapping > 10 and crossing > 5


@pytest.mark.parametrize("n", [0, 5, -1])
def test_sample_scene_rejects_bad_character_count(n: int) -> None:
    with pytest.raises(CharacterCountError, match=str(n)):
        sample_scene(n, 0)


def test_validate_rejects_bad_character_count() -> None:
    scene = sample_scene(4, 0)
    scene["characters"].append(copy.deepcopy(scene["characters"][0]))
    with pytest.raises(CharacterCountError, match="1 to 4 characters, got 5"):
        validate_scene(scene)
    scene["characters"] = []
    with pytest.raises(CharacterCountError, match="got 0"):
        validate_scene(scene)


def _broken(mutate) -> str:
    scene = sample_scene(2, 3)
    mutate(scene)
    with pytest.raises(SceneError) as info:
        validate_scene(scene)
    return str(info.value)


def test_validate_messages_name_the_field() -> None:
    msg = _broken(lambda s: s["characters"][1].update(skin=[300, 0]))
    assert msg == "characters[1].skin: expected 3 integers 0-255, got [300, 0]"
    msg = _broken(lambda s: s["characters"][0].pop("hair"))
    assert msg == "characters[0].hair: missing required key"
    msg = _broken(lambda s: s["characters"][0]["hat"].update(style="crown"))
    assert msg.startswith("characters[0].hat.style: expected one of none, cap, top_hat, beanie, got 'crown'")
    msg = _broken(lambda s: s["characters"][1].update(home=[0.5, 1.7]))
    assert msg.startswith("characters[1].home: expected 2 numbers in [0.0, 1.0]")
    msg = _broken(lambda s: s["characters"][0]["motion"]["bob"].update(frequency_hz="fast"))
    assert msg.startswith("characters[0].motion.bob.frequency_hz: expected a number")
    msg = _broken(lambda s: s["characters"][0].update(hair_colour=[1, 2, 3]))
    assert msg.startswith("characters[0].hair_colour: unknown key")
    msg = _broken(lambda s: s["background"].update(top=[1.5, 2, 3]))
    assert msg.startswith("background.top: expected 3 integers 0-255")
    msg = _broken(lambda s: s["characters"][1].update(name=s["characters"][0]["name"]))
    assert "names must be unique" in msg
    assert _broken(lambda s: s.pop("background")) == "background: missing required key"


def test_validate_returns_a_clean_copy() -> None:
    scene = sample_scene(1, 0)
    scene["characters"][0]["depth"] = 1  # ints are fine where numbers are expected
    clean = validate_scene(scene)
    assert clean["characters"][0]["depth"] == 1.0 and isinstance(clean["characters"][0]["depth"], float)
    clean["characters"][0]["skin"][0] = (scene["characters"][0]["skin"][0] + 1) % 256
    assert scene["characters"][0]["skin"] != clean["characters"][0]["skin"]
