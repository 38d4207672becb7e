"""Every setting is documented in the README's configuration table."""

from pathlib import Path

from clientela.config import Settings


def test_every_setting_is_in_the_readme():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    missing = [name for name in Settings.model_fields
               if f"`CLIENTELA_{name.upper()}`" not in readme]
    assert missing == []
