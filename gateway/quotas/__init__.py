"""Per-agent and per-team limits: reserve a request's worst case before the provider is called,
settle to the real usage after (issue 4). The request path uses `QuotaService`."""

from gateway.quotas.errors import QuotaExceeded, QuotaStoreDown
from gateway.quotas.service import Admission, QuotaService

__all__ = ["Admission", "QuotaExceeded", "QuotaService", "QuotaStoreDown"]
