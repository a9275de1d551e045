"""Suite-wide test settings."""

from hypothesis import HealthCheck, settings

# Property tests must not fail because a loaded 2-core CI machine ran one example slowly:
# no per-example deadline; correctness is what they check (speed lives in bench/).
settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")
