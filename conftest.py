"""Settings for every test directory of the repository: pytest loads this file, at the repository's
root, whichever of them a run collects.

Property-based tests are bounded, so that ``scripts/test`` stays well inside its budget (20 minutes
on two CPUs) as each layer adds its suite. The ``suite`` profile, the default, runs 50 examples per
test (hypothesis's default is 100), the same ones on every run (``derandomize``: CI and a developer
see the same failure), without hypothesis's per-example deadline, which a machine busy with other
work misses without any fault of the code. For a long search on purpose:

    scripts/test -- --hypothesis-profile=thorough -k spec
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "suite",
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,  # derandomized runs find nothing new to replay; and no .hypothesis/ in the clone
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True)
settings.load_profile("suite")
