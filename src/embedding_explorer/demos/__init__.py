"""Ready-made demo models and data sets for exploring layer embeddings."""
