"""Queue tickets (取号/叫号): numbering, sources, window calling, the citizen's view and the live feeds."""
