"""First-party storykit plugins, registered through the ``storykit`` entry point group."""
