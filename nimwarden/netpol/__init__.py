"""Kubernetes NetworkPolicy: a reachability model, static checks, and enforcement judgement.

- :mod:`objects` parses API JSON (plain dicts) into an :class:`~objects.Inventory`;
- :mod:`model` decides one flow with an explanation (the reference semantics);
- :mod:`matrix` computes whole pod-to-pod matrices fast (bitsets);
- :mod:`static` checks what the policies declare against the deployment's requirements;
- :mod:`plan` sizes a live probe matrix from the model;
- :mod:`enforcement` compares declared with observed reachability and draws the matrix.
"""
