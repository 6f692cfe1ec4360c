"""A third-party plug-in package, as a user would write one, for the extension-point tests.

``tests/plugins`` is put on ``sys.path`` for the whole test session
(``conftest.py``), so the ``.dist-info`` beside this package makes it an
installed distribution whose entry points the registries load.
"""
