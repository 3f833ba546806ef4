"""Loopback fakes of the providers ehall cannot reach from here, speaking their real wire formats."""
