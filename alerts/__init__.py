"""Alerts: rules over the query language that notify webhook and email channels."""
