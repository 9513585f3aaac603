import sys
import textwrap

import pytest
import torch

from eliq.config import load_settings
from eliq.pairs import families as registry
from eliq.plugins import Plugins


def test_a_third_party_family_is_found_through_its_entry_point(tmp_path, monkeypatch):
    package = tmp_path / "acme_negatives"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        from eliq.pairs.families import NegativeFamily

        def _invert(images, severity, generators):
            strength = severity.float()[:, None, None, None] / 5
            return images * (1 - strength) + (1 - images) * strength

        INVERT = NegativeFamily("acme_invert", "aesthetic", "conventional",
                                "partly inverted colours", degrade=_invert)
    """)
    )
    dist = tmp_path / "acme_negatives-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-negatives\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[eliq.negatives]\nacme_invert = acme_negatives:INVERT\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh = Plugins("negative family", "eliq.negatives")
    for name, family in registry.FAMILIES.all().items():
        fresh.add(name, family)
    monkeypatch.setattr(registry, "FAMILIES", fresh)
    family = registry.get_family("acme_invert")
    out = family.degrade(torch.zeros(1, 3, 4, 4), torch.tensor([5]), [torch.Generator()])
    assert torch.equal(out, torch.ones(1, 3, 4, 4))
    assert "jpeg" in registry.available_families()
    sys.modules.pop("acme_negatives", None)


def test_unknown_family_names_list_the_known_ones():
    with pytest.raises(KeyError, match="jpeg"):
        registry.get_family("jpge")


def test_settings_come_from_file_then_environment(tmp_path, monkeypatch):
    config = tmp_path / "eliq.toml"
    config.write_text('log_level = "DEBUG"\n[pairs]\nseed = 5\nper_positive = 3\n')
    monkeypatch.setenv("ELIQ_PAIRS__PER_POSITIVE", "9")
    settings = load_settings(config)
    assert settings.log_level == "DEBUG"
    assert settings.pairs.seed == 5
    assert settings.pairs.per_positive == 9  # the environment wins over the file
    yaml_config = tmp_path / "eliq.yaml"
    yaml_config.write_text("pairs:\n  batch_size: 3\n")
    assert load_settings(yaml_config).pairs.batch_size == 3
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")
