"""Who may see the dashboard: anyone on loopback; beyond it, a login.

`meterline dashboard` passes how to log in, never a secret value:
- `METERLINE_DASHBOARD_PASSWORD_REF`: the `dashboard.password` secret reference (`os.environ/X`,
  `file://...`, `aws-secretsmanager://...`, `vault://...`). The page resolves it through
  meterline.secrets (with `METERLINE_SECRETS`, the `secrets:` settings, which hold references
  only), again every `PASSWORD_REFRESH_SECONDS`, so a rotation needs no restart. A typed
  password is compared with `hmac.compare_digest`; neither is logged or shown.
- `METERLINE_DASHBOARD_OIDC=1`: Streamlit's own OIDC login (`st.login`; the provider settings in
  Streamlit's `[auth]` secrets, written by the operator), for identity-provider accounts.
With neither, the page is open: the bind rule (meterline/bind.py) keeps it on loopback unless
`dashboard.allow_unauthenticated: true`.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Mapping

import streamlit as st

from meterline.config import SecretsConfig
from meterline.secrets import SecretRegistry, SecretResolutionError

PASSWORD_REF_ENV = "METERLINE_DASHBOARD_PASSWORD_REF"
SECRETS_ENV = "METERLINE_SECRETS"
OIDC_ENV = "METERLINE_DASHBOARD_OIDC"
PASSWORD_REFRESH_SECONDS = 300.0
SESSION_KEY = "meterline.signed_in"

_lock = threading.Lock()
_cached: tuple[float, str, str] | None = None
"""(fetched at, reference, value): the resolved password, per process."""


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected password never matches."""
    return bool(expected) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _password(reference: str, environ: Mapping[str, str]) -> str:
    global _cached
    with _lock:
        now = time.monotonic()
        if _cached and _cached[1] == reference and now - _cached[0] < PASSWORD_REFRESH_SECONDS:
            return _cached[2]
        settings = SecretsConfig.model_validate_json(environ.get(SECRETS_ENV) or "{}")
        registry = SecretRegistry(settings)
        try:
            _reference, version = registry.fetch(reference)
        finally:
            registry.close()
        _cached = (now, reference, version.value)
        return version.value


def gate(environ: Mapping[str, str] = os.environ) -> bool:
    """True when this session may see the pages; otherwise draws the login and returns False."""
    if environ.get(OIDC_ENV) == "1":
        # Without Streamlit's [auth] settings st.user has no `is_logged_in`: nobody is logged in.
        if st.user.get("is_logged_in", False):
            st.sidebar.button("Log out", on_click=st.logout)
            return True
        st.title("Meterline")
        st.button("Log in", on_click=st.login)
        return False
    reference = environ.get(PASSWORD_REF_ENV)
    if not reference or st.session_state.get(SESSION_KEY):
        return True
    st.title("Meterline")
    with st.form("login"):
        typed = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        try:
            expected = _password(reference, environ)
        except (SecretResolutionError, OSError, ValueError) as exc:  # a backend down, a bad reference
            st.error(f"The dashboard password cannot be read right now ({type(exc).__name__}); try again.")
            return False
        if password_matches(typed, expected):
            st.session_state[SESSION_KEY] = True
            st.rerun()
        st.error("Wrong password.")
    return False
