"""Every certificate-center flow, by name; the engine looks flows up here."""
