"""Cluster fault test (`make cluster-faults`, S2): break the processes of `make cluster`."""
