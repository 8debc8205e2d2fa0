"""Ways in: opening cases from tickets and acting on them (CLI today, HTTP next)."""
