"""Forge webhooks: is a delivery genuine, which delivery is it, and what does it say.

No I/O and no web framework: the host hands over the raw body and the headers (names
in lower case); :func:`read_delivery` checks them and returns a :class:`Delivery`, or
raises. The use case (:meth:`storykit._tracking.TrackingCases.receive_webhook`) does the
rest.

- **GitHub** signs the raw body: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
  body keyed with the secret>``. Names a delivery in ``X-GitHub-Delivery`` (a redelivery
  keeps it) and the event in ``X-GitHub-Event``. The body is JSON, or a form with the
  JSON in ``payload`` when the hook's content type is ``application/x-www-form-urlencoded``.
- **GitLab** sends the secret itself: ``X-Gitlab-Token``. Names a delivery in
  ``Idempotency-Key`` (the same on every retry, GitLab 17.4 and later), else
  ``X-Gitlab-Event-UUID``, and the event in ``X-Gitlab-Event``.

Both comparisons are constant-time (:func:`hmac.compare_digest`), and nothing here puts
a secret, a signature or a token into an error message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from storykit.errors import Invalid, NotConfigured, Unauthorized

__all__ = ["FORGES", "Delivery", "read_delivery", "sign_github"]

FORGES = ("github", "gitlab")
"""The forges with a webhook route (``POST /webhooks/<forge>``)."""

SECRET_SETTINGS = {
    "github": "STORYKIT_GITHUB_WEBHOOK_SECRET",
    "gitlab": "STORYKIT_GITLAB_WEBHOOK_SECRET",
}
_ID = re.compile(r"[!-~]{1,200}")  # printable ASCII, as a header carries it
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    """One genuine delivery: who sent it, its id, its event and its JSON payload."""

    forge: str
    id: str
    event: str
    payload: Mapping[str, Any]


def sign_github(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends with ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def read_delivery(
    forge: str, secret: str | None, headers: Mapping[str, str], body: bytes
) -> Delivery:
    """The delivery, once its signature (GitHub) or token (GitLab) proves it genuine.

    :class:`NotConfigured` without a secret, :class:`Unauthorized` for a missing or wrong
    signature or token, :class:`Invalid` for a genuine delivery without an id, event or
    JSON object. ``headers`` are keyed in lower case.
    """
    if forge not in SECRET_SETTINGS:
        raise Invalid(f"no webhooks from {forge!r}; storykit takes them from {FORGES}")
    if not secret:
        raise NotConfigured(
            f"webhooks from {forge} are off: set {SECRET_SETTINGS[forge]} to the secret"
            f" the webhook was made with, and restart storykit"
        )
    if forge == "github":
        _check_github(secret, headers.get("x-hub-signature-256"), body)
        delivery = headers.get("x-github-delivery")
        event = headers.get("x-github-event")
        id_header, event_header = "X-GitHub-Delivery", "X-GitHub-Event"
    else:
        _check_gitlab(secret, headers.get("x-gitlab-token"))
        delivery = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")
        event = headers.get("x-gitlab-event")
        id_header, event_header = "Idempotency-Key or X-Gitlab-Event-UUID", "X-Gitlab-Event"
    if not delivery or not _ID.fullmatch(delivery):
        raise Invalid(f"the delivery has no usable {id_header} header")
    if not event or not _ID.fullmatch(event.replace(" ", "_")):
        raise Invalid(f"the delivery does not say its event ({event_header})")
    return Delivery(
        forge=forge,
        id=delivery,
        event=event,
        payload=_payload(body, headers.get("content-type", "")),
    )


def _check_github(secret: str, header: str | None, body: bytes) -> None:
    found = _SIGNATURE.fullmatch((header or "").strip())
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Compared even when the header is malformed, so how long the answer takes says nothing.
    given = found.group(1).lower() if found else "0" * 64
    if not hmac.compare_digest(given.encode(), expected.encode()) or not found:
        raise Unauthorized(
            "the X-Hub-Signature-256 header is missing or does not match the body: sign"
            " the raw body with the webhook's secret (HMAC-SHA256, sha256=<hex>)"
        )


def _check_gitlab(secret: str, token: str | None) -> None:
    if not hmac.compare_digest((token or "").encode(), secret.encode()):
        raise Unauthorized(
            "the X-Gitlab-Token header is missing or is not the webhook's secret token"
        )


def _payload(body: bytes, content_type: str) -> Mapping[str, Any]:
    raw = body
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if len(form.get("payload", ())) != 1:
            raise Invalid("a form-encoded delivery must carry its JSON in one 'payload' field")
        raw = form["payload"][0].encode()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise Invalid("the delivery's body is not JSON") from None
    if not isinstance(value, dict):
        raise Invalid("the delivery's body is not a JSON object")
    return value
