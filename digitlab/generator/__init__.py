"""The PCA + KDE digit generator and the quality of its samples."""
