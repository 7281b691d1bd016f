"""The image policy (read and check an image, its hash) and the dataset's image packs with their index."""
