"""Command-line tools around the service: the launcher (Triton + gateway) and the report client."""
