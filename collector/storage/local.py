"""Re-exports `meterline.storage.local` (the local-directory target), where it now lives."""

from meterline.storage.local import LocalTarget, SwapUnsupported, exchange, make_durable_dirs

__all__ = ["LocalTarget", "SwapUnsupported", "exchange", "make_durable_dirs"]
