"""studio-auth: shared configuration and clock used by every layer."""
