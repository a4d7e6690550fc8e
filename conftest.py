"""Root conftest: thin.

Installed (``pip install -e .``, as scripts/ do), the plugin arrives through its
``pytest11`` entry point; in a bare checkout this loads it instead.
"""

from importlib.metadata import entry_points

if not any(ep.value == "nimwarden.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["nimwarden.plugin"]
