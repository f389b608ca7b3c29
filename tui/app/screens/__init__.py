"""Modal screens: help, full-screen value view, confirmation."""
