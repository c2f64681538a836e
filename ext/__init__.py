"""Compiled hot loops (Cython): game cores, the sum-tree, the shared random generator.

Modules here import nothing of ours; they are built by `setup.py` into `ext.<name>`.
"""
