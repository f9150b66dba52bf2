"""tap's built-in plugins, registered through the ``tap`` entry-point group like any third-party package."""
