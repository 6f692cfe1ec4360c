"""Hypothesis profiles of the fuzz tests: small in CI, large on demand.

``OAUTH_FUZZ_PROFILE=fuzz`` multiplies every fuzz test's examples by
:data:`SCALES` ``["fuzz"]`` (``bench/fuzz.py`` runs the HTTP targets that
way, 10,000 cases each); the default ``ci`` keeps the whole suite to a few
thousand cases. Deadlines are off everywhere: a slow SQLite fsync or a
large body is not a bug, a wrong answer is.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Profile name -> multiplier of each test's base number of examples.
SCALES = {"ci": 1, "fuzz": 50}
PROFILE = os.environ.get("OAUTH_FUZZ_PROFILE", "ci")
if PROFILE not in SCALES:
    raise RuntimeError(f"OAUTH_FUZZ_PROFILE must be one of {', '.join(SCALES)}, got {PROFILE!r}")

for _name in SCALES:
    settings.register_profile(
        f"oauth-{_name}",
        deadline=None,
        # Big bodies and slow stores are part of what is tested.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        print_blob=True,
    )


def examples(base: int) -> settings:
    """Settings for a fuzz test that runs ``base`` examples in CI (more under the fuzz profile)."""
    return settings(settings.get_profile(f"oauth-{PROFILE}"), max_examples=base * SCALES[PROFILE])
