"""ALTA programs: `.alta` sources shipped as package data."""
