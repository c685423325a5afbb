"""The domain: authentication, sessions, throttling, audit, permissions, users. No HTTP."""
