"""Personal data protection: payload keys and the payload codec (`keys`, `codec`)."""
