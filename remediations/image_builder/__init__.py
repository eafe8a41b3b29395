"""Remediations on Azure VM Image Builder templates, with what they share (`templates`)."""
