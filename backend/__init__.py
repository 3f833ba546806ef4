"""ehall: the backend of the Ulanqab government-service centre."""
