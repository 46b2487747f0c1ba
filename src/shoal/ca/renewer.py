"""When a node renews its certificate (swarmkit's ca/renewer.go, calculateRandomExpiry), pure.

A node renews at a random point between 50 % and 80 % of its certificate's validity window, so that
nodes issued certificates together do not all come back together; an expired (or nearly expired)
certificate is renewed at once. A failed renewal is retried with exponential backoff."""

from __future__ import annotations

import random
from datetime import datetime

from cryptography import x509

RENEW_FROM = 0.5
RENEW_TO = 0.8
RETRY_MIN = 5.0  # swarmkit's renewal backoff: 5 s, doubling, up to an hour
RETRY_MAX = 3600.0


def renewal_delay(cert_pem: bytes, now: datetime, rng: random.Random | None = None) -> float:
    """Seconds from ``now`` until the certificate (the first in ``cert_pem``) should be renewed;
    0 when that point has passed."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    window = (end - start).total_seconds()
    share = (rng or random.Random()).uniform(RENEW_FROM, RENEW_TO)
    due = start.timestamp() + window * share
    return max(0.0, due - now.timestamp())


def retry_delay(failures: int) -> float:
    """Seconds to wait after the ``failures``-th failed attempt in a row (1 = the first)."""
    return min(RETRY_MAX, RETRY_MIN * float(2 ** max(0, failures - 1)))
