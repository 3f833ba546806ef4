"""What every domain shares: errors, auth, personal data, rate limits, realtime, events."""
