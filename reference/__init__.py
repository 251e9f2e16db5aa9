"""The instructor's solution of the assignment (``mlp.py``) and the tools that train it."""
