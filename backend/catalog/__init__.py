"""catalog: halls, departments, service items (事项), queue categories, windows and the working-day calendar."""
