"""The catalog service: products, categories, reviews and search, stored in MongoDB."""
