"""Order review: fraud and review rules as data, evaluated over typed order facts. Pure core.

`facts` turns an OrderPlaced / OrderUpdated into `OrderFacts`; `rules` loads and validates the rule
language (`topology/rules/review.yaml`, the rates file and the lists); `evaluate` decides one order;
`velocity` keeps the windowed per-email / per-address / per-IP state on event time and re-decides the
orders a late event touches. The worker adapter only moves bytes around them.
"""
