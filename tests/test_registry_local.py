import json

import pytest

from adapters import create_registry
from tests.conftest import SHARED

AGIQA = SHARED / "datasets" / "agiqa3k"
ORDER = ["AttnGAN_normal", "glide_normal", "DALLE2_normal"]


def test_sub_folders_are_releases_and_a_changed_folder_is_a_new_one(tmp_path):
    (tmp_path / "sd-tiny").mkdir()
    (tmp_path / "sd-tiny" / "model_index.json").write_text('{"_class_name": "X"}')
    (tmp_path / "outputs-v1").mkdir()
    (tmp_path / "outputs-v1" / "manifest.csv").write_text("image,prompt\na.png,a cat\n")
    (tmp_path / ".copying").mkdir()
    (tmp_path / ".copying" / "model_index.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    registry = create_registry("local", root=tmp_path)
    first, cursor = registry.poll(None)
    kinds = {r.name: r.loader.kind for r in first}
    assert kinds == {"sd-tiny": "diffusers", "outputs-v1": "outputs"}
    cursor = json.loads(json.dumps(cursor))
    assert create_registry("local", root=tmp_path).poll(cursor)[0] == []  # after a restart
    (tmp_path / "outputs-v1" / "manifest.csv").write_text("image,prompt\na.png,a dog\n")
    changed, _ = create_registry("local", root=tmp_path).poll(cursor)
    assert [r.name for r in changed] == ["outputs-v1"] and changed[0].id != first[1].id


def test_agiqa3k_replays_as_a_release_history_one_generator_per_poll():
    registry = create_registry(
        "local",
        root=AGIQA,
        manifest="scores.csv",
        split_column="generator",
        image_column="name",
        images="images",
        order=ORDER,
        per_poll=1,
    )
    cursor, history = None, []
    for _ in range(4):
        releases, cursor = registry.poll(json.loads(json.dumps(cursor)))
        history += releases
    assert [r.name for r in history] == ORDER
    options = history[0].loader.options
    assert options["split_column"] == "generator" and options["value"] == "AttnGAN_normal"
    assert history[0].metadata["images"] > 100


def test_bad_settings_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="both"):
        create_registry("local", root=AGIQA, manifest="scores.csv")
    with pytest.raises(ValueError, match="Midjourney"):
        create_registry(
            "local",
            root=AGIQA,
            manifest="scores.csv",
            split_column="generator",
            image_column="name",
            order=["Midjourney"],
        ).poll(None)
    with pytest.raises(FileNotFoundError):
        create_registry("local", root=tmp_path / "missing").poll(None)
