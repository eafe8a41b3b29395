"""The approval loop: signed single-use links, Teams cards, the confirmation page and the decision.

May import core, azure (the outbound webhook guard), state and wiring; decisions call into it.
"""
