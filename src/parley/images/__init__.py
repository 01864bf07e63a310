"""Image generation and editing (issue 17): providers, stored images, their lineage."""
