"""`make faults`: the fault suite. Faults are injected into the local stack and every run is checked
for lost, duplicated and out-of-order events, hangs and unclean endings; the figures go in a table.

Scenarios (one stack each, started fresh on free ports):
- `kills`: the worker process SIGKILLed at random moments while runs are in flight (`kills.py`);
- `disconnects`: random client disconnect/resume cycles, `Last-Event-ID` and `?after=` (`disconnects.py`);
- `throttling`: DynamoDB throttling and 5xx injected by devstack's fault proxy (`throttling.py`);
- `model`: model faults from a local Messages server, with the anthropic provider (`model_faults.py`).
"""
