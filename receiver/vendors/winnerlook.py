"""Winnerlook (h.1069106.com), vendor doc 001 (v9.9.1): the same 云信 platform as Topen.

Pushes are Topen's (see topen.py), with `yyyy/MM/dd` times and, for voice codes, 5-field
reports `batch,mobile,call_seconds,ring_seconds,hangup|`::

    POST /push/winnerlook  Content-Type: application/x-www-form-urlencoded
    account=XXX&GetReport=2314364418256720085,18000000000,DELIVRD|

    account=XXX&GetReport=2314357620085030623,13900000000,0,30,2|
"""
from . import topen

ADAPTER = topen.adapter("winnerlook", voice=True, doc="001")
