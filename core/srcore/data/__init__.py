"""Data: colour conversion, MATLAB-compatible resizing, image I/O, datasets and patch preparation.

Submodules are imported on use (``from srcore.data.resize import imresize``) so that importing
``srcore.data`` stays cheap.
"""
