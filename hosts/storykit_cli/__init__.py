"""The storykit command line."""
