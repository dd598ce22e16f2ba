"""Data page's feature tools under AppTest: the suspects gallery and its actions."""

from __future__ import annotations

from conftest import make_folder
from test_app import app, page
from test_suspects import plant_errors


def _use_server_folder(at, name: str):
    at.radio(key="d_source").set_value("server").run()
    at.selectbox(key="d_folder").set_value(name).run()
    at.button(key="d_use_folder").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_suspects_gallery_exclude_undo_and_move(env):
    root = make_folder(env / "data" / "noisy", per_class=20)
    planted = plant_errors(root, 3)
    at = _use_server_folder(page(app(), "data"), "noisy")
    at.button(key="d_suspects").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("look mislabelled" in c.value for c in at.caption)
    worst = sorted(planted, key=lambda p: [b.key for b in at.button].index(f"d_excl_{p}"))
    first, second = worst[0], worst[1]
    at.button(key=f"d_excl_{first}").click().run()
    assert any("1 image(s) excluded by you" in w.value for w in at.warning)
    assert any("59 usable images" in s.value for s in at.subheader)
    at.button(key=f"d_undo_{first}").click().run()
    assert not any("excluded by you" in w.value for w in at.warning)
    assert any("60 usable images" in s.value for s in at.subheader)
    likely = at.selectbox(key=f"d_to_{second}").value
    assert likely != second.split("/")[0]
    at.button(key=f"d_move_{second}").click().run()
    assert not at.exception
    assert (root / likely / second.split("/")[1]).is_file() and not (root / second).exists()
    at.button(key=f"d_undo_{second}").click().run()
    assert (root / second).is_file()


def test_a_click_on_a_disabled_curation_button_changes_nothing(env, monkeypatch):
    """The buttons of a read-only data set are disabled, but a click can still arrive (sent by a
    crafted client, or rendered before the data set left the visitor's data root): each action
    checks again, on the server, that the data set is the visitor's own."""
    root = make_folder(env / "data" / "noisy", per_class=20)
    planted = sorted(plant_errors(root, 3))
    at = _use_server_folder(page(app(), "data"), "noisy")
    at.button(key="d_suspects").click().run()
    other = env / "elsewhere"
    monkeypatch.setenv("TL_DATA_ROOT", str(other))  # "noisy" is no longer under this visitor's data root
    at.button(key=f"d_excl_{planted[0]}").click().run()  # rendered enabled before the root changed
    assert at.button(key=f"d_move_{planted[1]}").disabled  # now shown read-only
    likely = at.selectbox(key=f"d_to_{planted[1]}").value
    assert not at.exception, [e.value for e in at.exception]
    assert not list(root.rglob("*.json")), "a curation file was written"
    assert (root / planted[1]).is_file() and likely
    assert any("outside your data root" in e.value for e in at.error), [e.value for e in at.error]


def test_the_bundled_sample_is_read_only(env):
    at = page(app(), "data")
    at.button(key="d_use_sample").click().run()
    assert any("shown read-only" in c.value for c in at.caption)


def test_near_duplicates_are_shown_and_kept_together_in_the_split(env):
    from PIL import ImageEnhance

    from test_neardup import scene

    root = env / "data" / "scenes"
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(15):
            scene(c * 100 + i).save(root / f"c{c}" / f"{i}.jpg", quality=90)
    ImageEnhance.Brightness(scene(3)).enhance(1.04).save(root / "c0" / "3_copy.jpg", quality=80)
    at = _use_server_folder(page(app(), "data"), "scenes")
    at.button(key="d_dups").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("1 group(s) of near-identical images" in i.value for i in at.info)
    assert any("similarity 0.9" in c.value for c in at.caption)
