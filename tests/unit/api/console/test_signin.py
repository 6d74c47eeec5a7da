"""Where the console goes after signing in: a console page of this site, nowhere else."""

import pytest

from growbin.api.console.signin import _next


@pytest.mark.parametrize(
    ("asked", "went"),
    [
        ("/console/dead-letters?reason=failed", "/console/dead-letters?reason=failed"),
        (None, "/console"),
        ("", "/console"),
        ("https://evil.example/console", "/console"),
        ("//evil.example/console", "/console"),
        ("/v1/admin/dlq", "/console"),
        ("/console\\@evil.example", "/console"),
        ("/console\r\nSet-Cookie: x=1", "/console"),
    ],
)
def test_only_console_paths_are_followed_after_sign_in(asked, went):
    assert _next(asked) == went
