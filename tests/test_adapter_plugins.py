import sys
import textwrap

import pytest

import adapters
from eliq.plugins import Plugins


def test_a_third_party_registry_is_found_by_name(tmp_path, monkeypatch):
    """A package that declares an ``eliq.registries`` entry point (a real dist-info on
    sys.path, as pip would install it) is created by name like a built-in."""
    (tmp_path / "acme_registry.py").write_text(
        textwrap.dedent("""
        class AcmeRegistry:
            def __init__(self, bucket):
                self.name = "acme"
                self.bucket = bucket

            def poll(self, cursor):
                return [], {"bucket": self.bucket}
        """)
    )
    dist = tmp_path / "acme_registry-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-registry\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[eliq.registries]\nacme = acme_registry:AcmeRegistry\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(adapters, "REGISTRIES", Plugins("registry", "eliq.registries"))
    adapters._register_built_ins()
    made = adapters.create_registry("acme", bucket="gs://releases")
    assert isinstance(made, adapters.Registry)
    assert made.poll(None) == ([], {"bucket": "gs://releases"})
    assert {"acme", "huggingface"} <= set(adapters.REGISTRIES.all())
    sys.modules.pop("acme_registry", None)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="huggingface"):
        adapters.create_registry("hugginface")
