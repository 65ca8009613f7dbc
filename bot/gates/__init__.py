"""Release gates: may this version of a prompt, model, index... ship now? (``evals``: reading
evaluation reports; ``check``: the rules of ``gates:`` in ballast.yaml, decisions, approvals.)"""
