"""What to do about a Diagnosis: policy (modes, scopes, budgets), the sweep, and the pipeline
that decides (apply, propose, observe) and, from the queue, carries out.

May import core, azure, state, diagnosis, approvals, wiring and `remediations`; never entry.
"""
