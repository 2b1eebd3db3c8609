"""The engine's networking: bridges, addresses, firewalling and the embedded DNS server."""
