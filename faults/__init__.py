"""Fault tests (`make faults`): break a private copy of the stack and check nothing is lost."""
