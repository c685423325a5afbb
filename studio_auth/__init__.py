"""studio-auth: shared configuration and clock used by every layer."""

import logging

# A library does not decide where its log lines go: without a handler configured by the
# application, studio-auth's lines (audit events among them) are dropped, not printed to
# stderr by Python's last-resort handler. ``studio-auth serve`` configures one.
logging.getLogger("studio_auth").addHandler(logging.NullHandler())
