"""What every stage shares: input checks with one clear error, files written atomically, thread counts, the
torch device.
"""

