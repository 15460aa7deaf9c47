"""Tests of the tracker service."""
