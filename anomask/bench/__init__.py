"""``anomask bench NAME``: the benchmarks, on top of every layer (they print numbers and
assert nothing; ``--out FILE.json`` writes the result file the docs' tables are made from).

``model`` (network forward), ``heads`` (fused heads vs the forward), ``runtime`` (every
runtime backend), ``node`` (publisher -> node -> subscriber), ``transport`` (camera frames
delivered per input QoS and DDS transport), ``eval`` (streaming metrics),
``quality`` (the papers' findings on the synthetic default), ``tables`` (the docs' tables
from ``docs/results/*.json``); ``results`` writes the result files.
"""
