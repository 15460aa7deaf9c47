"""The password hasher: Argon2id with parameters chosen for this service's login budget."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's first recommended minimum: 19 MiB of memory, 2 passes, 1 lane.

    Django's defaults (100 MiB, 8 lanes) cost about 260 ms of CPU per login on the 2-core
    machine; these about 30 ms (docs/benchmarks.md, "Login CPU"). Same algorithm name, so a
    hash made with other parameters still verifies, and is rewritten at its next login.
    """

    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
