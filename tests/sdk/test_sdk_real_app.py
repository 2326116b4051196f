"""Every public SDK method is exercised against the real app, not only against canned replies.

The clients of conftest.target (and test_sdk_wechat's app target) note each method called in
sdk_testing.EXERCISED; conftest runs this test after all the others, so a new method without an
end-to-end test against the app fails here.
"""

from __future__ import annotations

import liebian_sdk as sdk
import pytest
from sdk_testing import EXERCISED, public_methods

# Methods that send no request, with where they are shown instead.
LOCAL = {
    "webhooks.verify": "checks a signature in process: test_sdk_webhooks, test_sdk_readme",
}


def test_sync_and_async_clients_have_the_same_methods() -> None:
    with sdk.Client("https://x.test", "k") as client:
        names = public_methods(client)
    assert names == public_methods(sdk.AsyncClient("https://x.test", "k"))
    assert set(LOCAL) <= names


def test_every_public_method_reaches_the_real_app(whole_app_suite_selected: bool) -> None:
    if not whole_app_suite_selected:
        pytest.skip("judged only when every test against the real app ran in this session")
    with sdk.Client("https://x.test", "k") as client:
        names = public_methods(client)
    missing = sorted(names - set(LOCAL) - EXERCISED)
    assert not missing, f"no test calls these against the real app: {', '.join(missing)}"
